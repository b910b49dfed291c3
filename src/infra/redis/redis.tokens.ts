import type Redis from 'ioredis';

/** The injection token of the app's main Redis client. */
export const REDIS = Symbol('REDIS');
export type RedisClient = Redis;
