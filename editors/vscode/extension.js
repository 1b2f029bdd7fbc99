// Hover text for .vpo recipes from `vpo explain --format markdown`: the first candidate name vpo knows
// (see hover.js) is shown. The `vpo.path` setting names the executable (default: `vpo` on PATH).
"use strict";

const vscode = require("vscode");
const { execFile } = require("child_process");
const { explainCandidates } = require("./hover");

function explain(vpo, name) {
  return new Promise((resolve) => {
    execFile(vpo, ["explain", name, "--format", "markdown"], { timeout: 10000 }, (error, stdout) => {
      resolve(error || stdout.startsWith("unknown name") ? null : stdout);
    });
  });
}

async function firstKnown(vpo, names, token) {
  for (const name of names) {
    if (token.isCancellationRequested) return null;
    const text = await explain(vpo, name);
    if (text) return text;
  }
  return null;
}

function activate(context) {
  const provider = {
    async provideHover(document, position, token) {
      const names = explainCandidates(document.getText(), document.offsetAt(position));
      const vpo = vscode.workspace.getConfiguration("vpo").get("path", "vpo");
      const text = names.length ? await firstKnown(vpo, names, token) : null;
      return text ? new vscode.Hover(new vscode.MarkdownString(text)) : null;
    },
  };
  context.subscriptions.push(vscode.languages.registerHoverProvider("vpo", provider));
}

module.exports = { activate, deactivate() {} };
