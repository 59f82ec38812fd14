// An unhandled rejection anywhere in a test file fails the run instead of being printed and forgotten.
process.on('unhandledRejection', (reason) => {
  throw reason instanceof Error ? reason : new Error(`Unhandled rejection: ${String(reason)}`);
});
