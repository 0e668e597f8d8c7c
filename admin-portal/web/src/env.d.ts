/// <reference types="vite/client" />

// data-test="…" hooks for the end-to-end tests on native elements.
import "@vue/runtime-dom";
declare module "@vue/runtime-dom" {
  interface HTMLAttributes {
    [key: `data-${string}`]: string | number | boolean | undefined;
  }
}
export {};
