// What `vpo explain` should be asked about the word under the cursor: a list of names, most specific
// first (`grpo.group_size` before `group_size`); the extension shows the first one vpo knows.
// Pure functions of the text, no VS Code API, so tests/editors/test_hover.py runs them under node.
"use strict";

const WORD = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/g;
const DECLARES = /^\s*(stage|model|dataset|reward|cluster|let|param|next)\s+$/;  // the word is a new name

// The dotted word covering `offset`, with where it starts and ends.
function wordAt(text, offset) {
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
  const newline = text.indexOf("\n", offset);
  const line = text.slice(lineStart, newline === -1 ? text.length : newline);
  for (const m of line.matchAll(WORD)) {
    const start = lineStart + m.index;
    if (start <= offset && offset <= start + m[0].length) return { word: m[0], start, end: start + m[0].length };
  }
  return null;
}

// Brackets still open at `offset`, innermost last, and whether `offset` is in a comment or a string.
function scan(text, offset) {
  const stack = [];
  let inComment = false, inString = false;
  for (let i = 0; i < offset; i++) {
    const c = text[i];
    if (c === "\n") {
      inComment = inString = false;
    } else if (inComment) {
      continue;
    } else if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === "#") {
      inComment = true;
    } else if (c === '"') {
      inString = true;
    } else if ("({[".includes(c)) {
      stack.push({ char: c, at: i });
    } else if (")}]".includes(c)) {
      stack.pop();
    }
  }
  return { stack, inComment, inString };
}

// `use std.rewards as r` -> {r: "std.rewards"}; `use std.shapes` -> {shapes: "std.shapes"}.
function moduleAliases(text) {
  const aliases = {};
  for (const m of text.matchAll(/^\s*use\s+(std(?:\.[A-Za-z_]\w*)+)(?:\s+as\s+([A-Za-z_]\w*))?/gm)) {
    aliases[m[2] || m[1].split(".").pop()] = m[1];
  }
  return aliases;
}

// Names a (possibly dotted) callee or value may be explained under: `shapes.videos` is the schema
// `shapes_videos`, `r.safety` the stdlib item `std.rewards.safety`.
function nameVariants(name, aliases) {
  const parts = name.split(".");
  if (parts.length === 1) return [name];
  const out = [];
  if (aliases[parts[0]]) out.push([aliases[parts[0]], ...parts.slice(1)].join("."));
  out.push(parts.join("_"), parts[parts.length - 1]);
  return out;
}

// The schemas a `{ ... }` or `( ... )` block may belong to: `with vipo {`, `stage x = grpo(sft) on h {`,
// `cluster h = slurm {`, `on_policy(rl, n = 4)`.
function blockOwners(text, bracket, aliases) {
  const before = text.slice(0, bracket.at);
  if (bracket.char === "(") {
    const m = before.match(/(\biterate\s+)?([A-Za-z_][\w.]*)\s*$/);
    return m && !m[1] ? nameVariants(m[2], aliases) : [];  // `iterate ipo(policy = base)` binds, no schema
  }
  if (bracket.char !== "{") return [];
  const header = before.slice(before.lastIndexOf("\n") + 1);
  let m = header.match(/\bwith\s+([A-Za-z_]\w*)\s*$/);
  if (m) return [m[1]];
  m = header.match(/=\s*([A-Za-z_][\w.]*)\s*\(.*\)\s*(?:on\s+\w+\s*)?$/) || header.match(/=\s*([A-Za-z_][\w.]*)\s*$/);
  return m ? nameVariants(m[1], aliases) : [];
}

// Candidate names for the word at `offset`, most specific first; [] when there is none to explain.
function explainCandidates(text, offset) {
  const found = wordAt(text, offset);
  if (!found) return [];
  const { stack, inComment, inString } = scan(text, found.start);
  if (inComment || inString) return [];
  const aliases = moduleAliases(text);
  const lineHead = text.slice(text.lastIndexOf("\n", found.start - 1) + 1, found.start);
  const isField = !DECLARES.test(lineHead) && /^\s*=(?!=)/.test(text.slice(found.end));
  const out = [];
  if (isField && stack.length) {
    for (const owner of blockOwners(text, stack[stack.length - 1], aliases)) out.push(`${owner}.${found.word}`);
  }
  out.push(...nameVariants(found.word, aliases));
  return [...new Set(out)];
}

module.exports = { explainCandidates, wordAt, scan, moduleAliases };
