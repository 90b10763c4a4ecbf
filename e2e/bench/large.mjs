// Large-bundle benchmark of the browser pages (issue 11, item 7): a bundle of random bytes is
// sent from /send and collected on the inbox's collect page in Debian's headless Chromium,
// against a real gateway, while the browser's memory is sampled every 250 ms:
//
// - the page's JS heap (CDP `Runtime.getHeapUsage`; ArrayBuffers live outside it, so also)
// - every Chromium process's RSS and PSS (/proc/PID/status VmRSS, /proc/PID/smaps_rollup Pss),
//   summed, and the renderers' alone (`--type=renderer`).
//
// Each person uses a fresh *persistent* profile in a temporary directory, not an incognito
// context: an incognito context keeps the origin-private file system (the send page's outbox) in
// memory, which a real profile does not.
//
// Collect: up to MEMORY_LIMIT (256 MiB of ciphertext, web/src/save.ts) the page holds the files as
// Blobs and offers downloads; above it, the page asks for a folder with `showDirectoryPicker`,
// which headless Chromium cannot answer. The benchmark then gives the page a folder itself: an
// init script replaces `showDirectoryPicker` with one returning a directory of the profile's
// origin-private file system, so the page's own FolderSink code writes the files through
// FileSystemWritableFileStream as it does into a real folder. What is not measured is the real
// picker and writing into a user-visible folder on disk.
//
//   node e2e/bench/large.mjs                      # 1 GiB (folder path)
//   node e2e/bench/large.mjs --size 64MiB         # quick (in-memory path)
//   node e2e/bench/large.mjs --size 1GiB,255MiB   # both collect paths; the committed results
//
// SEALPOST_BIN and SEALPOST_CHROMIUM as for the browser tests. The table is printed and written to
// e2e/bench/results.md (--out PATH to write elsewhere, --no-write not to).

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { Gateway, chromiumPath, makeCast, sealpostBin, sleep, within } from '../harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
/** web/src/save.ts MEMORY_LIMIT: ciphertext bytes above which collect streams to a folder. */
const MEMORY_LIMIT = 256 * MiB;
const SAMPLE_MS = 250;
/** Bound on one send or one collect. */
const WORK_MS = 45 * 60_000;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// ---------------------------------------------------------------------------------------------

function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(text.trim());
  if (!m) throw new Error(`--size: \`${text}\` is not a size like 1GiB or 64MiB`);
  const unit = { b: 1, kib: 1024, mib: MiB, gib: 1024 * MiB }[(m[2] || 'B').toLowerCase()];
  return Math.round(Number(m[1]) * unit);
}

function parseArgs(argv) {
  const opts = { sizes: [1024 * MiB], out: join(here, 'results.md'), write: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--size') opts.sizes = argv[++i].split(',').map(parseSize);
    else if (a.startsWith('--size=')) opts.sizes = a.slice(7).split(',').map(parseSize);
    else if (a === '--out') opts.out = argv[++i];
    else if (a === '--no-write') opts.write = false;
    else throw new Error(`unknown argument \`${a}\` (use --size 1GiB[,255MiB], --out PATH, --no-write)`);
  }
  return opts;
}

const fmtSize = (n) => (n >= 1024 * MiB && n % (1024 * MiB) === 0 ? `${n / 1024 / MiB} GiB` : `${(n / MiB).toFixed(n % MiB ? 1 : 0)} MiB`);
const mib = (n) => (n / MiB).toFixed(0);

/** Writes `size` random bytes to `path` in 8 MiB pieces; returns their SHA-256 (hex). */
async function randomFile(path, size) {
  const h = createHash('sha256');
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const piece = randomBytes(Math.min(8 * MiB, left));
    h.update(piece);
    left -= piece.length;
    if (!out.write(piece)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r, reject) => out.end((e) => (e ? reject(e) : r())));
  return h.digest('hex');
}

/** SHA-256 (hex) of a file, streamed. */
async function sha256File(path) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 8 * MiB })) h.update(chunk);
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Memory sampling
// ---------------------------------------------------------------------------------------------

/** Every process below `root` (parent ids from /proc/PID/stat). */
function descendants(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      // Gone already.
    }
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    for (const c of children.get(stack.pop()) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** `{rss, pss}` in bytes of one process, or undefined if it is gone. */
function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    let pss = rss;
    try {
      pss = Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // No smaps_rollup: count RSS.
    }
    return { rss, pss };
  } catch {
    return undefined;
  }
}

/** Chromium's processes (below this Node process, whose executable is Chromium's). */
function chromiumProcesses() {
  const procs = [];
  for (const pid of descendants(process.pid)) {
    try {
      // Chromium rewrites its command line into one string: match, do not split.
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!/chrom/i.test(cmd.split(/[\0 ]/)[0])) continue;
      procs.push({ pid, renderer: /--type=renderer/.test(cmd) });
    } catch {
      // Gone already.
    }
  }
  return procs;
}

/** Samples memory every SAMPLE_MS until `stop()`; `status()` reads the page's progress. */
function sampler(cdp, gatewayPid, progressSelector, page) {
  const peak = { heapUsed: 0, heapTotal: 0, rss: 0, pss: 0, rendererRss: 0, rendererPss: 0, gatewayRss: 0 };
  const marks = {};
  let running = true;
  let samples = 0;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      try {
        const heap = await within(2000, cdp.send('Runtime.getHeapUsage'), 'heap usage');
        peak.heapUsed = Math.max(peak.heapUsed, heap.usedSize);
        peak.heapTotal = Math.max(peak.heapTotal, heap.totalSize);
      } catch {
        // The page is busy or navigating: the /proc numbers still count.
      }
      let rss = 0, pss = 0, rRss = 0, rPss = 0;
      for (const p of chromiumProcesses()) {
        const m = memoryOf(p.pid);
        if (!m) continue;
        rss += m.rss;
        pss += m.pss;
        if (p.renderer) {
          rRss += m.rss;
          rPss += m.pss;
        }
      }
      if (samples === 0) Object.assign(peak, { baseRss: rss, basePss: pss, baseRendererRss: rRss });
      peak.rss = Math.max(peak.rss, rss);
      peak.pss = Math.max(peak.pss, pss);
      peak.rendererRss = Math.max(peak.rendererRss, rRss);
      peak.rendererPss = Math.max(peak.rendererPss, rPss);
      peak.gatewayRss = Math.max(peak.gatewayRss, memoryOf(gatewayPid)?.rss ?? 0);
      samples++;
      if (progressSelector) {
        const text = await page.locator(progressSelector).innerText({ timeout: 1000 }).catch(() => '');
        for (const [key, re] of [['uploading', /Uploading/], ['decrypting', /Receiving and decrypting/]]) {
          if (!marks[key] && re.test(text)) marks[key] = Date.now();
        }
      }
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - started)));
    }
  })();
  return {
    peak,
    marks,
    async stop() {
      running = false;
      await loop;
      return { ...peak, samples };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One person in a fresh persistent profile
// ---------------------------------------------------------------------------------------------

async function openPerson(gw, token, { folderPicker = false } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'sealpost-bench-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    locale: 'en-GB',
    timeout: 30_000,
  });
  context.setDefaultTimeout(30_000);
  if (folderPicker) {
    // Headless Chromium cannot answer the directory picker: hand the page a directory of the
    // origin-private file system instead. The page's FolderSink writes into it exactly as into a
    // folder the user picked (FileSystemWritableFileStream, swap file moved into place on close).
    await context.addInitScript(() => {
      window.showDirectoryPicker = async () =>
        (await navigator.storage.getDirectory()).getDirectoryHandle('bench-collect', { create: true });
    });
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  await page.goto(`${gw.url}/sign-in`);
  await page.getByLabel('API token', { exact: true }).fill(token);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith('/sign-in')),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  const cdp = await context.newCDPSession(page);
  return {
    context,
    page,
    cdp,
    profile,
    problems,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The largest regular file below `dir` whose size is `size` (the collected file in OPFS). */
function findFileOfSize(dir, size) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = findFileOfSize(path, size);
      if (found) return found;
    } else if (entry.isFile() && statSync(path).size === size) {
      return path;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

async function benchOne(size) {
  const work = mkdtempSync(join(tmpdir(), 'sealpost-bench-'));
  let gw;
  const people = [];
  try {
    const name = `bench-${size}.bin`;
    const input = join(work, name);
    process.stderr.write(`# ${fmtSize(size)}: writing random input…\n`);
    const sourceHash = await randomFile(input, size);

    gw = await Gateway.start();
    const cast = await makeCast(gw, work);

    // --- Send -----------------------------------------------------------------------------
    process.stderr.write(`# ${fmtSize(size)}: sending from /send…\n`);
    const bob = await openPerson(gw, cast.bob.token);
    people.push(bob);
    await bob.page.goto(`${gw.url}/send`);
    await bob.page.getByLabel('Recipients', { exact: true }).fill('hmpps/alice');
    // A local browser gets the path, not the bytes: Node never holds the file.
    await bob.page.getByLabel('Files', { exact: true }).setInputFiles(input);
    await bob.page.getByLabel('Classification', { exact: true }).selectOption('OFFICIAL');
    await bob.cdp.send('HeapProfiler.collectGarbage').catch(() => {});
    const sendSampler = sampler(bob.cdp, gw.child.pid, '#send-status', bob.page);
    const sendStart = Date.now();
    await bob.page.getByRole('button', { name: 'Send', exact: true }).click();
    await bob.page.locator('#send-result:visible, .govuk-error-summary:visible').first().waitFor({ state: 'visible', timeout: WORK_MS });
    const sendEnd = Date.now();
    const sendPeak = await sendSampler.stop();
    if (!(await bob.page.locator('#send-result').isVisible())) {
      throw new Error(`the send failed: ${await bob.page.locator('main').innerText()}`);
    }
    const id = (await bob.page.locator('#transfer-id').innerText()).trim();
    const uploadStart = sendSampler.marks.uploading ?? sendEnd;
    await bob.close();
    people.pop();
    const stored = statSync(join(gw.dataDir)).isDirectory() ? ciphertextSize(gw.dataDir) : undefined;

    // --- Collect --------------------------------------------------------------------------
    const ciphertext = stored ?? size;
    const folder = ciphertext > MEMORY_LIMIT;
    process.stderr.write(`# ${fmtSize(size)}: collecting (${folder ? 'folder' : 'in-memory'} path)…\n`);
    const alice = await openPerson(gw, cast.alice.token, { folderPicker: folder });
    people.push(alice);
    await alice.page.goto(`${gw.url}/inbox/${id}`);
    await alice.page.getByLabel('Identity file', { exact: true }).setInputFiles(cast.alice.identity);
    const download = folder ? undefined : alice.page.waitForEvent('download', { timeout: WORK_MS });
    await alice.cdp.send('HeapProfiler.collectGarbage').catch(() => {});
    const collectSampler = sampler(alice.cdp, gw.child.pid, '#collect-status', alice.page);
    const collectStart = Date.now();
    await alice.page.getByRole('button', { name: 'Collect', exact: true }).click();
    if (folder) {
      const choose = alice.page.getByRole('button', { name: 'Choose a folder to save the files in', exact: true });
      await choose.waitFor({ timeout: 120_000 });
      await choose.click();
    }
    const done = alice.page.locator('#collected-files li');
    const failed = alice.page.locator('#collect-error');
    await Promise.race([
      done.first().waitFor({ state: 'attached', timeout: WORK_MS }),
      failed.waitFor({ state: 'visible', timeout: WORK_MS }),
    ]);
    let collectedPath;
    if (await failed.isVisible()) throw new Error(`the collect failed: ${await failed.innerText()}`);
    if (folder) {
      collectedPath = findFileOfSize(alice.profile, size);
      if (!collectedPath) throw new Error('the collected file is not in the profile’s origin-private file system');
    } else {
      const d = await download;
      collectedPath = await d.path();
    }
    const collectEnd = Date.now();
    const collectPeak = await collectSampler.stop();
    const collectedHash = await sha256File(collectedPath);
    const same = collectedHash === sourceHash;
    if (alice.problems.length || bob.problems.length) throw new Error([...bob.problems, ...alice.problems].join('\n'));
    await alice.close();
    people.pop();

    const seconds = (ms) => ms / 1000;
    return {
      size,
      ciphertext,
      path: folder ? 'folder (FolderSink into OPFS, picker substituted)' : 'in memory (Blobs, then a download)',
      send: {
        seconds: seconds(sendEnd - sendStart),
        encryptSeconds: seconds(uploadStart - sendStart),
        uploadSeconds: seconds(sendEnd - uploadStart),
        peak: sendPeak,
      },
      collect: { seconds: seconds(collectEnd - collectStart), peak: collectPeak },
      same,
      sourceHash,
      collectedHash,
    };
  } finally {
    for (const p of people) await p.close();
    await gw?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The size of the one stored ciphertext below the gateway's data directory (the largest file). */
function ciphertextSize(dir) {
  let largest = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) largest = Math.max(largest, statSync(p).size);
    }
  };
  walk(dir);
  return largest || undefined;
}

function table(results) {
  const rate = (n, s) => `${(n / 1e6 / s).toFixed(1)} MB/s`;
  const lines = [
    '| Bundle | Step | Time | Rate | Peak JS heap (used) | Chromium RSS, all processes: before → peak (peak PSS) | Renderer RSS: before → peak | Peak gateway RSS | Collect path | Bytes equal |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const r of results) {
    const s = r.send;
    lines.push(
      `| ${fmtSize(r.size)} | send: encrypt ${s.encryptSeconds.toFixed(1)} s + upload ${s.uploadSeconds.toFixed(1)} s | ${s.seconds.toFixed(1)} s | ${rate(r.size, s.seconds)} | ${mib(s.peak.heapUsed)} MiB | ${mib(s.peak.baseRss)} → ${mib(s.peak.rss)} MiB (${mib(s.peak.pss)}) | ${mib(s.peak.baseRendererRss)} → ${mib(s.peak.rendererRss)} MiB | ${mib(s.peak.gatewayRss)} MiB | | |`,
    );
    const c = r.collect;
    lines.push(
      `| ${fmtSize(r.size)} | collect: download, decrypt, check, save | ${c.seconds.toFixed(1)} s | ${rate(r.size, c.seconds)} | ${mib(c.peak.heapUsed)} MiB | ${mib(c.peak.baseRss)} → ${mib(c.peak.rss)} MiB (${mib(c.peak.pss)}) | ${mib(c.peak.baseRendererRss)} → ${mib(c.peak.rendererRss)} MiB | ${mib(c.peak.gatewayRss)} MiB | ${r.path} | ${r.same ? 'yes (SHA-256)' : '**no**'} |`,
    );
  }
  return lines.join('\n');
}

/** What the table does and does not show; printed under it. */
const NOTES = `What was measured and what was not:

- Send: the page's own code, end to end: the file chosen with the file input (Chromium reads it
  from disk), bundled and age-encrypted as it streams into the origin-private file system, then
  uploaded with tus in 8 MiB pieces. "Encrypt" runs from pressing Send until the page says it is
  uploading (it includes fetching the keys and checking them against the log), "upload" from
  then to the answer.
- Collect above 256 MiB of ciphertext (the folder path): the page asks for a folder with
  \`showDirectoryPicker\`, which headless Chromium cannot answer, so an init script replaces the
  picker with one returning a directory of the profile's origin-private file system. The page's
  FolderSink then writes through FileSystemWritableFileStream as into a real folder. Not
  measured: the real picker, and writing into a folder outside the browser's own storage.
- Collect up to 256 MiB (the in-memory path): the page keeps the files as Blobs and offers them
  as downloads, so the browser holds the bundle whole by design; the growth shows outside the
  renderer (Chromium keeps Blobs in its browser process), not in it.
- The peak JS heap stays small because the bytes are in ArrayBuffers and Blobs, outside V8's
  heap: the RSS columns are the ones that show memory held.
- The bytes collected are compared with the source by SHA-256, both streamed from disk.
- Each person uses a fresh persistent profile: an incognito context keeps the origin-private file
  system in memory, which would count the outbox against the browser.
`;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const loadAtStart = loadavg()[0].toFixed(2);
  const results = [];
  for (const size of opts.sizes) results.push(await benchOne(size));
  const chromiumVersion = await (async () => {
    const b = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
    const v = b.version();
    await b.close();
    return v;
  })();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM; load average ${loadAtStart} at the start, ${loadavg()[0].toFixed(2)} at the end`;
  const text = [
    '# Large bundles in the browser',
    '',
    `\`node e2e/bench/large.mjs --size ${opts.sizes.map((s) => fmtSize(s).replace(' ', '')).join(',')}\`, ${new Date().toISOString().slice(0, 16)}Z.`,
    `Gateway \`${relative(process.cwd(), sealpostBin())}\`; Chromium ${chromiumVersion} headless (Debian); ${machine}.`,
    'Memory sampled every 250 ms; peaks. RSS sums every Chromium process (shared pages counted once per process); PSS shares them out.',
    'Rates are bundle bytes (plaintext) over wall time, the send from pressing Send to the answer on the page, the collect from pressing Collect to the files being offered.',
    '',
    table(results),
    '',
    NOTES,
  ].join('\n');
  console.log(text);
  if (opts.write) writeFileSync(opts.out, text);
  if (results.some((r) => !r.same)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
