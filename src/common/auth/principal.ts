/** Who is calling: set on the request by the auth guard from a verified access token. */
export interface Principal {
  userId: string;
  /** The refresh-token family (one login) the access token was issued to. */
  sessionId: string;
}

export interface AccessTokenClaims {
  sub: string;
  sid: string;
}
