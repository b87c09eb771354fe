// The whole extension: tell VS Code that the ctrdbg-replay debug type is served by `ctrdbg dap` over stdio.
const vscode = require('vscode');

function activate(context) {
  context.subscriptions.push(
    vscode.debug.registerDebugAdapterDescriptorFactory('ctrdbg-replay', {
      createDebugAdapterDescriptor() {
        const path = vscode.workspace.getConfiguration('ctrdbg').get('path') || 'ctrdbg';
        return new vscode.DebugAdapterExecutable(path, ['dap']);
      },
    }),
  );
}

function deactivate() {}

module.exports = { activate, deactivate };
