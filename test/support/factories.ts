import { Api } from './test-app';

let counter = 0;

/** A fresh E.164 phone number, unique within a test file. */
export function newPhone(): string {
  counter += 1;
  const random = Math.floor(Math.random() * 1e5);
  return `+919${String(counter).padStart(4, '0')}${String(random).padStart(5, '0')}`;
}

export interface TestUser {
  id: string;
  phone: string;
  name: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

export async function newUser(api: Api, name = 'Test User'): Promise<TestUser> {
  const phone = newPhone();
  const password = 'password-123';
  const res = await api.post('/auth/register', { phone, name, password });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  const { user, accessToken, refreshToken } = res.body.data;
  return { id: user.id, phone, name, password, accessToken, refreshToken };
}

export interface TestOrg {
  id: string;
  name: string;
  owner: TestUser;
}

export async function newOrg(api: Api, owner?: TestUser, name = 'Sharma Traders'): Promise<TestOrg> {
  const o = owner ?? (await newUser(api, 'Owner'));
  const res = await api.post('/orgs', { name, city: 'Jaipur' }, { token: o.accessToken });
  if (res.status !== 201) throw new Error(`create org failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.data.id, name, owner: o };
}

/** A user who is a member of the org with the given role. */
export async function newMember(api: Api, org: TestOrg, role: string): Promise<TestUser> {
  const user = await newUser(api, `${role} member`);
  const res = await api.post(`/orgs/${org.id}/members`, { phone: user.phone, role }, { token: org.owner.accessToken });
  if (res.status !== 201) throw new Error(`add member failed: ${res.status} ${JSON.stringify(res.body)}`);
  return user;
}
