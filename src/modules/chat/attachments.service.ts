import { Inject, Injectable } from '@nestjs/common';
import { fromBuffer } from 'file-type';
import { Readable } from 'node:stream';
import { uuidv7 } from 'uuidv7';
import { Principal } from '../../common/auth/principal';
import { DomainError, NotFoundError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { StorageService } from '../../infra/storage/storage.service';
import { safeFilename, SNIFF_BYTES, sniffedContentType } from './attachment-rules';
import { AttachmentRow, ChatRepository } from './chat.repository';
import { AttachmentView } from './chat.schemas';
import { ChatService } from './chat.service';

function tooLarge(max: number): DomainError {
  return new DomainError(ErrorCode.PAYLOAD_TOO_LARGE, `An attachment may be at most ${max} bytes`);
}

/**
 * Uploads, downloads and the orphan sweep. An upload is streamed to storage:
 * its first bytes are read to sniff the type (refused before anything is
 * stored), the rest passes through a byte counter that fails the upload past
 * CHAT_ATTACHMENT_MAX_BYTES (the partial object is discarded by the adapter).
 */
@Injectable()
export class AttachmentsService {
  constructor(
    private readonly repo: ChatRepository,
    private readonly chat: ChatService,
    private readonly storage: StorageService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  view(a: Pick<AttachmentRow, 'id' | 'contentType' | 'size' | 'filename'>): AttachmentView {
    return {
      id: a.id,
      url: `${this.config.publicBaseUrl}/api/v1/attachments/${a.id}`,
      contentType: a.contentType,
      size: a.size,
      filename: a.filename,
    };
  }

  async upload(principal: Principal, source: Readable, filename: string | undefined): Promise<AttachmentView> {
    const max = this.config.chatAttachmentMaxBytes;
    const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const drain = async () => {
      try {
        while (!(await it.next()).done);
      } catch {
        // the request is being answered with an error anyway
      }
    };
    const headChunks: Buffer[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes < SNIFF_BYTES) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      headChunks.push(r.value);
      headBytes += r.value.length;
    }
    const head = Buffer.concat(headChunks);
    if (head.length > max) {
      await drain();
      throw tooLarge(max);
    }
    const contentType = sniffedContentType(head, (await fromBuffer(head))?.mime);
    if (!this.config.chatAttachmentTypes.includes(contentType)) {
      if (!ended) await drain();
      throw new DomainError(
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        `Attachments of type ${contentType} are not accepted (accepted: ${this.config.chatAttachmentTypes.join(', ')})`,
      );
    }
    async function* counted(): AsyncGenerator<Buffer> {
      let total = head.length;
      yield head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        total += r.value.length;
        if (total > max) throw tooLarge(max);
        yield r.value;
      }
    }
    const id = uuidv7();
    const storageKey = `attachments/${id}`;
    let size: number;
    try {
      size = (await this.storage.put(Readable.from(counted()), storageKey)).size;
    } catch (err) {
      await drain();
      throw err;
    }
    const row = await this.repo.insertAttachment({
      id,
      uploaderId: principal.userId,
      storageKey,
      contentType,
      size,
      filename: safeFilename(filename),
    });
    return this.view(row);
  }

  /** The attachment and its bytes, to its uploader and to members of the thread of a message that carries it; else 404. */
  async download(principal: Principal, attachmentId: string): Promise<{ attachment: AttachmentRow; stream: Readable }> {
    const a = await this.repo.findAttachment(attachmentId);
    if (!a) throw new NotFoundError('Attachment');
    if (a.uploaderId !== principal.userId) {
      if (!a.threadId) throw new NotFoundError('Attachment');
      const thread = await this.repo.findThread(a.threadId);
      if (!thread || !(await this.chat.isMember(principal, thread))) throw new NotFoundError('Attachment');
    }
    const stream = await this.storage.get(a.storageKey);
    if (!stream) throw new NotFoundError('Attachment');
    return { attachment: a, stream };
  }

  /** Deletes attachments no message carried within CHAT_ATTACHMENT_ORPHAN_MS: the row first, then the bytes. */
  async sweepOrphans(now = new Date(), batch = 500): Promise<number> {
    const before = new Date(now.getTime() - this.config.chatAttachmentOrphanMs);
    let removed = 0;
    for (const orphan of await this.repo.findOrphans(before, batch)) {
      if (!(await this.repo.deleteOrphan(orphan.id))) continue;
      await this.storage.delete(orphan.storageKey);
      removed++;
    }
    return removed;
  }
}
