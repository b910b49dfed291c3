import { BadRequestException, Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { RouteSchema } from '@nestjs/platform-fastify';
import { ApiBearerAuth, ApiConsumes, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentUser } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { ValidationError } from '../../common/errors/domain-error';
import { enveloped, RAW_RESPONSE } from '../../common/http/envelope';
import { contentDisposition } from './attachment-rules';
import { AttachmentsService } from './attachments.service';
import {
  AttachmentIdParam,
  CreateThreadDto,
  ListMessagesQuery,
  ListThreadsQuery,
  MarkReadDto,
  SendMessageDto,
  ThreadDetailQuery,
  ThreadIdParam,
} from './chat.schemas';
import { ChatService, Created } from './chat.service';

/** A send's answer (MessageView), 201 or 200, written by a serializer compiled from this schema. */
const SENT_MESSAGE = enveloped({
  type: 'object',
  properties: {
    id: { type: 'string' },
    threadId: { type: 'string' },
    senderId: { type: 'string' },
    body: { type: 'string' },
    clientMessageId: { type: 'string' },
    attachmentIds: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string' },
  },
  required: ['id', 'threadId', 'senderId', 'body', 'clientMessageId', 'attachmentIds', 'createdAt'],
  additionalProperties: false,
});

/** 201 for what this request created, 200 for what was already there. */
function created<T>(res: FastifyReply, result: Created<T>): T {
  void res.status(result.created ? 201 : 200);
  return result.body;
}

@ApiTags('chat')
@ApiBearerAuth()
@Controller('chat/threads')
export class ChatController {
  constructor(private readonly chat: ChatService) {}

  @Post()
  @ApiOperation({
    summary: 'The thread of a trip or of a ledger account: 201 when created, 200 with the existing one',
    description:
      'Exactly one of tripId and accountId (400 otherwise). A trip or account the caller cannot see, or whose ' +
      'thread they would not be a member of, is a 404.',
  })
  async create(
    @CurrentUser() me: Principal,
    @Body() body: CreateThreadDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return created(res, await this.chat.createThread(me, body));
  }

  @Get()
  @ApiOperation({ summary: "The caller's threads with their unreadCount, newest activity first" })
  list(@CurrentUser() me: Principal, @Query() q: ListThreadsQuery) {
    return this.chat.listThreads(me, q);
  }

  @Get(':threadId')
  get(@CurrentUser() me: Principal, @Param() p: ThreadIdParam, @Query() q: ThreadDetailQuery) {
    return this.chat.getThread(me, p.threadId, q.fields);
  }

  @Get(':threadId/messages')
  @ApiOperation({ summary: 'Messages, newest first (pages stay stable while new messages arrive)' })
  messages(@CurrentUser() me: Principal, @Param() p: ThreadIdParam, @Query() q: ListMessagesQuery) {
    return this.chat.listMessages(me, p.threadId, q.cursor, q.limit);
  }

  @Post(':threadId/messages')
  @RouteSchema({ response: { 200: SENT_MESSAGE, 201: SENT_MESSAGE } })
  @ApiOperation({
    summary: 'Send a message: 201, or 200 with the first message when this clientMessageId was already sent',
    description:
      'The body is stored trimmed (1..4000 characters; empty only with attachments). attachmentIds must be ' +
      "attachments the caller uploaded that no message carries yet (422 otherwise). Published to the thread's room as chat.message.",
  })
  async send(
    @CurrentUser() me: Principal,
    @Param() p: ThreadIdParam,
    @Body() body: SendMessageDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return created(res, await this.chat.send(me, p.threadId, body));
  }

  @Post(':threadId/read')
  @HttpCode(204)
  @ApiOperation({ summary: "Moves the caller's read marker up to and including lastMessageId (never back)" })
  async read(@CurrentUser() me: Principal, @Param() p: ThreadIdParam, @Body() body: MarkReadDto) {
    await this.chat.markRead(me, p.threadId, body.lastMessageId);
  }
}

@ApiTags('chat')
@ApiBearerAuth()
@Controller('attachments')
export class AttachmentsController {
  constructor(private readonly attachments: AttachmentsService) {}

  @Post()
  @HttpCode(201)
  @ApiConsumes('multipart/form-data')
  @ApiOperation({
    summary: 'Upload a file (multipart, one file part): {id, url, contentType, size, filename}',
    description:
      'At most CHAT_ATTACHMENT_MAX_BYTES (413 beyond, nothing stored). The type is sniffed from the bytes, never ' +
      'taken from the name or header, and must be in CHAT_ATTACHMENT_TYPES (415 otherwise). 503 STORAGE_UNAVAILABLE ' +
      'while storage is down.',
  })
  async upload(@CurrentUser() me: Principal, @Req() req: FastifyRequest) {
    if (!req.isMultipart())
      throw new ValidationError([{ path: 'file', message: 'send multipart/form-data with a file' }]);
    let file;
    try {
      file = await req.file();
    } catch (err) {
      throw new BadRequestException((err as Error).message);
    }
    if (!file) throw new ValidationError([{ path: 'file', message: 'a file part is required' }]);
    return this.attachments.upload(me, file.file, file.filename);
  }

  @Get(':attachmentId')
  @ApiProduces('application/octet-stream')
  @ApiOperation({ summary: 'The file, to its uploader and to members of the thread of a message that carries it' })
  async download(
    @CurrentUser() me: Principal,
    @Param() p: AttachmentIdParam,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    const { attachment, stream } = await this.attachments.download(me, p.attachmentId);
    void res
      .header('content-type', attachment.contentType)
      .header('content-length', String(attachment.size))
      .header('content-disposition', contentDisposition(attachment.filename))
      .header('cache-control', 'private, max-age=0')
      .header('x-content-type-options', 'nosniff');
    return Object.assign(stream, { [RAW_RESPONSE]: true });
  }
}
