// Used by .ci/nest11.sh through NODE_OPTIONS="--import <this file>", with NEST_COMPAT_DIR set.
// jest's moduleNameMapper only covers code that jest loads. Tests also fork plain Node processes on the built
// library (test/support/consumer-process.mjs); this resolve hook sends their @nestjs/* imports to the Nest 11 copy
// too, so the whole Nest 11 job runs on Nest 11. It does not affect code loaded by jest (jest links ESM itself).
import { register } from 'node:module';

if (process.env.NEST_COMPAT_DIR) {
  register(new URL('./nest11-hooks.mjs', import.meta.url), {
    data: { compatDir: process.env.NEST_COMPAT_DIR, logFile: process.env.NEST11_HOOK_LOG ?? '' },
  });
}
