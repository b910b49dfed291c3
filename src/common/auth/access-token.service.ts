import { Inject, Injectable } from '@nestjs/common';
import { createSecretKey } from 'node:crypto';
import { JwtService, TokenExpiredError } from '@nestjs/jwt';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { UnauthenticatedError } from '../errors/domain-error';
import { ErrorCode } from '../errors/error-codes';
import { AccessTokenClaims, Principal } from './principal';

/** A token whose signature and claims were checked: who it names and until when (epoch ms). */
export interface VerifiedToken {
  principal: Principal;
  expiresAt: number;
}

/** Verified tokens remembered (a driver's phone sends the same token with every ping). */
const VERIFIED_CACHE_MAX = 10_000;

/**
 * Signs and verifies the short-lived access tokens (HS256 JWT). A token that
 * verified once is remembered by its exact text until it expires, so a phone
 * posting pings every few seconds costs one HMAC per token, not one per
 * request; a failed verification is never remembered, and expiry is checked
 * on every use. Revocation is the caller's check (SessionRevocations), made on
 * every request whatever this cache holds.
 */
@Injectable()
export class AccessTokenService {
  private readonly jwt: JwtService;
  private readonly verified = new Map<string, VerifiedToken>();

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.jwt = new JwtService({
      // A KeyObject, not the string: given a string, jsonwebtoken first tries to parse it as a PEM public or
      // private key (an OpenSSL call that throws) on every sign and verify, about 0.3 ms of CPU per request.
      secret: createSecretKey(Buffer.from(config.jwtSecret, 'utf8')),
      signOptions: { algorithm: 'HS256', expiresIn: config.accessTokenTtlSeconds, issuer: 'waybill' },
      verifyOptions: { algorithms: ['HS256'], issuer: 'waybill' },
    });
  }

  sign(principal: Principal): string {
    const claims: AccessTokenClaims = { sub: principal.userId, sid: principal.sessionId };
    return this.jwt.sign(claims);
  }

  verify(token: string): Principal {
    return this.verifyWithExpiry(token).principal;
  }

  verifyWithExpiry(token: string): VerifiedToken {
    const known = this.verified.get(token);
    if (known) {
      if (Date.now() < known.expiresAt) return known;
      this.verified.delete(token);
      throw expired();
    }
    let result: VerifiedToken;
    try {
      const claims = this.jwt.verify<AccessTokenClaims & { exp?: number }>(token);
      if (typeof claims.sub !== 'string' || typeof claims.sid !== 'string') throw new Error('claims');
      result = {
        principal: { userId: claims.sub, sessionId: claims.sid },
        expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : Number.MAX_SAFE_INTEGER,
      };
    } catch (err) {
      if (err instanceof TokenExpiredError) throw expired();
      throw new UnauthenticatedError(ErrorCode.INVALID_TOKEN, 'The access token is not valid');
    }
    // Oldest first out; expired entries leave on their next use or as newer ones push them out.
    if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, result);
    return result;
  }

  /** The token of an `Authorization: Bearer <token>` header, or undefined. */
  static fromHeader(header: string | undefined): string | undefined {
    if (!header) return undefined;
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    return match?.[1];
  }
}

const expired = () => new UnauthenticatedError(ErrorCode.TOKEN_EXPIRED, 'The access token has expired');
