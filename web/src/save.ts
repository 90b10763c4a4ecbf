// Where collected files go. Nothing is offered until the whole bundle has been received,
// decrypted and checked: a sink holds the files, then `commit` makes them visible or `discard`
// drops them.
//
// - In memory (`MemorySink`): each file becomes a Blob (its pieces gathered into Blobs of 8 MiB
//   as they come, which the browser may keep on disk), offered as an `<a download>` link. Used
//   for bundles up to MEMORY_LIMIT, and for larger ones where the browser has no directory picker.
// - In a folder the user chose (`FolderSink`, File System Access API): each file is written
//   through a FileSystemWritableFileStream, whose bytes go to a temporary swap file the browser
//   moves into place only on `close()`; `discard` aborts them and removes the names.

import type { BundleSink, FileWriter } from './bundle.ts'

/** Bundles larger than this (ciphertext bytes) are streamed to a folder where the browser offers
 * a directory picker, rather than held in memory. */
export const MEMORY_LIMIT = 256 * 1024 * 1024

/** A file ready for the user. */
export interface Saved {
  name: string
  size: number
  /** The Blob to download (memory sink only). */
  blob?: Blob
}

export interface Sink extends BundleSink {
  /** What kind of place it is, for messages. */
  readonly where: 'memory' | 'folder'
  commit(): Promise<Saved[]>
  discard(): Promise<void>
}

const PIECE = 8 * 1024 * 1024

/** Files held as Blobs. */
export class MemorySink implements Sink {
  readonly where = 'memory'
  private files: { name: string; parts: Blob[]; buffer: Uint8Array[]; buffered: number; size: number }[] = []

  create(name: string): FileWriter {
    const file = { name, parts: [] as Blob[], buffer: [] as Uint8Array[], buffered: 0, size: 0 }
    this.files.push(file)
    return {
      write: (chunk) => {
        // Copy: the producer may reuse its buffer.
        file.buffer.push(chunk.slice())
        file.buffered += chunk.length
        file.size += chunk.length
        if (file.buffered >= PIECE) {
          file.parts.push(new Blob(file.buffer as BlobPart[]))
          file.buffer = []
          file.buffered = 0
        }
      },
    }
  }

  async commit(): Promise<Saved[]> {
    return this.files.map((f) => ({
      name: f.name,
      size: f.size,
      blob: new Blob([...f.parts, ...(f.buffer as BlobPart[])], { type: 'application/octet-stream' }),
    }))
  }

  async discard(): Promise<void> {
    this.files = []
  }
}

/** Raised when a file of the bundle exists already in the chosen folder. */
export class ExistsError extends Error {
  constructor(readonly fileName: string) {
    super(
      `A file named “${fileName}” is already in the folder you chose. Nothing was saved: choose an empty folder and select Collect again.`,
    )
    this.name = 'ExistsError'
  }
}

/** Files written into a folder the user chose. */
export class FolderSink implements Sink {
  readonly where = 'folder'
  private files: { name: string; size: number; writable: FileSystemWritableFileStream }[] = []

  constructor(private readonly dir: FileSystemDirectoryHandle) {}

  async create(name: string): Promise<FileWriter> {
    const exists = await this.dir.getFileHandle(name).then(
      () => true,
      (e: unknown) => (e instanceof DOMException && e.name === 'NotFoundError' ? false : Promise.reject(e)),
    )
    if (exists) throw new ExistsError(name)
    const handle = await this.dir.getFileHandle(name, { create: true })
    const writable = await handle.createWritable()
    const file = { name, size: 0, writable }
    this.files.push(file)
    return {
      write: async (chunk) => {
        await writable.write(chunk as BufferSource)
        file.size += chunk.length
      },
    }
  }

  async commit(): Promise<Saved[]> {
    for (const f of this.files) await f.writable.close()
    return this.files.map((f) => ({ name: f.name, size: f.size }))
  }

  async discard(): Promise<void> {
    for (const f of this.files) {
      await f.writable.abort().catch(() => {})
      await this.dir.removeEntry(f.name).catch(() => {})
    }
    this.files = []
  }
}

/** Whether this browser can stream files into a folder the user picks. */
export function canPickFolder(): boolean {
  return typeof (window as { showDirectoryPicker?: unknown }).showDirectoryPicker === 'function'
}

/** Asks the user for a folder to write into (call from a click handler). */
export async function pickFolder(): Promise<FileSystemDirectoryHandle> {
  const picker = (window as unknown as { showDirectoryPicker: (o: object) => Promise<FileSystemDirectoryHandle> })
    .showDirectoryPicker
  return picker({ mode: 'readwrite', id: 'sealpost-collect' })
}
