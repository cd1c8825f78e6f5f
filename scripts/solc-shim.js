#!/usr/bin/env node
// A stand-in for the native `solc` CLI over solc-js (npm `solc`), for machines that cannot
// download native compilers (DESIGN §8). It speaks the two things py-solc-x needs:
//   --version        prints "Version: 0.8.x+commit..." like the native CLI
//   --standard-json  reads Standard JSON on stdin, writes the result JSON on stdout
// --allow-paths and --base-path are accepted; imports resolve against the base path (or the
// current directory) and then node_modules/, and never outside those roots.
'use strict';
const fs = require('fs');
const path = require('path');

const repoRoot = path.resolve(__dirname, '..');
const solc = require(path.join(repoRoot, 'node_modules', 'solc'));

const argv = process.argv.slice(2);
function optionValue(name) {
  const i = argv.indexOf(name);
  if (i >= 0 && i + 1 < argv.length) return argv[i + 1];
  const prefixed = argv.find((a) => a.startsWith(name + '='));
  return prefixed ? prefixed.slice(name.length + 1) : undefined;
}

if (argv.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface (solc-js shim)\n');
  process.stdout.write('Version: ' + solc.version() + '\n');
  process.exit(0);
}

if (!argv.includes('--standard-json')) {
  process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
  process.exit(2);
}

const basePath = path.resolve(optionValue('--base-path') || process.cwd());
const roots = [basePath, path.join(repoRoot, 'node_modules'), repoRoot];

function findImport(importPath) {
  if (path.isAbsolute(importPath) || importPath.split(/[\\/]/).includes('..')) {
    return { error: 'import outside the allowed roots: ' + importPath };
  }
  for (const root of roots) {
    const candidate = path.join(root, importPath);
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: 'file not found: ' + importPath };
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  const output = solc.compile(input, { import: findImport });
  process.stdout.write(output);
  process.stdout.write('\n');
});
