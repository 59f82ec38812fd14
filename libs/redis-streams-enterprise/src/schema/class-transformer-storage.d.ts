/**
 * class-transformer keeps `@Type` metadata in a storage it does not export from its entry point; class-validator-jsonschema
 * documents importing it from the CommonJS build (the build Node loads for `import 'class-transformer'`, so it is the
 * same instance the user's decorators wrote to). class-transformer ships no typings for that path.
 */
declare module 'class-transformer/cjs/storage.js' {
  import type { MetadataStorage } from 'class-transformer/types/MetadataStorage.js';

  export const defaultMetadataStorage: MetadataStorage;
}
