/*
 * The two lowest rungs of the http-tax ladder, run as a child process like the
 * app: `fastify` is bare Fastify answering {"hello":"world"}; `nest` is Nest 11
 * on the same Fastify adapter with one controller doing the same. Listens on
 * PORT/HOST; GET /hello.
 */
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import Fastify from 'fastify';

const port = Number(process.env.PORT);
const host = process.env.HOST ?? '127.0.0.1';

@Controller()
class HelloController {
  @Get('hello')
  hello() {
    return { hello: 'world' };
  }
}

@Module({ controllers: [HelloController] })
class HelloModule {}

async function main(kind: string): Promise<void> {
  if (kind === 'fastify') {
    const app = Fastify();
    app.get('/hello', async () => ({ hello: 'world' }));
    await app.listen({ port, host });
  } else if (kind === 'nest') {
    const app = await NestFactory.create<NestFastifyApplication>(HelloModule, new FastifyAdapter(), { logger: false });
    await app.listen(port, host);
  } else throw new Error(`unknown hello server ${kind}`);
  process.once('SIGTERM', () => process.exit(0));
}

void main(process.argv[2]).catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
