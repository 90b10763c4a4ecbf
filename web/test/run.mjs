// Runs the unit tests with node's built-in test runner. Node 20 cannot run TypeScript itself, so
// each test/*.test.ts is first bundled with esbuild (as the pages are) into test/.build/.

import { readdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, '.build')
rmSync(out, { recursive: true, force: true })
const tests = readdirSync(here).filter((f) => f.endsWith('.test.ts')).sort()
await build({
  entryPoints: tests.map((t) => join(here, t)),
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
})
const files = tests.map((t) => join(out, t.replace(/\.ts$/, '.mjs')))
const run = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' })
process.exit(run.status ?? 1)
