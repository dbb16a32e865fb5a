// ESLint over the library, the display extensions, tests, benchmarks and scripts (issue 13, "Habits").
// Type-aware (typescript-eslint, types from tsconfig.eslint.json): a promise nobody awaits, an await of something
// that is not a promise and a local nobody reads are errors. Formatting is Prettier's job (`npm run format`).
import { defineConfig } from "eslint/config";
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default defineConfig(
  {
    ignores: [
      "dist/**",
      "build/**",
      "node_modules/**",
      "notebooks/**",
      "solutions/**",
      "data/**",
      "native/**",
      "display/**",
      "test/fixtures/**",
    ],
  },
  {
    files: ["src/**/*.ts", "kernel-extensions/**/*.ts", "test/**/*.ts", "bench/**/*.js", "scripts/**/*.js"],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { project: "./tsconfig.eslint.json", tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // What the issue asks for.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { args: "after-used", argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true },
      ],
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/await-thenable": "error",
      // The project's deliberate habits: `any` at the edges of untyped modules (tslab, zeromq messages), and `require`
      // for lazy or optional modules (sharp, webgpu, the native addon, tslab's internals).
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-require-imports": "off",
      // Errors quote their cause's message; `new Error(message, { cause })` needs lib ES2022, and the library must also
      // compile under tslab's TypeScript for ES2020 (test/library.test.ts).
      "preserve-caught-error": "off",
      // Types, not this rule, catch undefined names in TypeScript; @types/node declares Node's globals for the JavaScript too.
      "no-undef": "off",
    },
  },
  {
    // Benchmarks and scripts are CommonJS JavaScript.
    files: ["bench/**/*.js", "scripts/**/*.js"],
    languageOptions: { sourceType: "commonjs" },
  },
);
