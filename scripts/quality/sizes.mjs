/**
 * Size limits of the library's source (CI: .ci/deps.sh): no file over MAX_FILE_LINES lines, no function over
 * MAX_FUNCTION_LINES. The targets are ~350 and ~60 (CONVENTIONS §1); the limits leave a little room so that a
 * one-line fix does not fail CI, and anything past them must be split. Prints the offenders, exits 1 if any.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = 'libs/redis-streams-enterprise/src';
const MAX_FILE_LINES = 380;
const MAX_FUNCTION_LINES = 70;
const offenders = [];

function walk(dir) {
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (fs.statSync(file).isDirectory()) walk(file);
    else if (file.endsWith('.ts') && !file.endsWith('.spec.ts') && !file.endsWith('.d.ts')) check(file);
  }
}

function check(file) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n').length;
  if (lines > MAX_FILE_LINES) offenders.push(`${file}: ${lines} lines (limit ${MAX_FILE_LINES})`);
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const visit = (node) => {
    const isFunction =
      ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node) || ts.isFunctionExpression(node) || ts.isConstructorDeclaration(node);
    if (isFunction && node.body) {
      const from = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const to = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = node.name ? node.name.getText() : '(anonymous)';
      if (to - from + 1 > MAX_FUNCTION_LINES) offenders.push(`${file}:${from + 1} ${name}: ${to - from + 1} lines (limit ${MAX_FUNCTION_LINES})`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}

walk(ROOT);
if (offenders.length > 0) {
  console.log(`Over the size limits:\n${offenders.join('\n')}`);
  process.exit(1);
}
console.log(`sizes: every file of ${ROOT} within ${MAX_FILE_LINES} lines, every function within ${MAX_FUNCTION_LINES}`);
