import '@testing-library/jest-dom/vitest';
import { afterEach, vi } from 'vitest';

// jsdom has no layout, so nothing ever resizes; components that measure themselves
// (`bind:clientWidth`) need the observer to exist and read a width of 0.
if (typeof globalThis.ResizeObserver === 'undefined') {
  globalThis.ResizeObserver = class {
    observe(): void {}
    unobserve(): void {}
    disconnect(): void {}
  };
}

// jsdom has no layout either, so nothing scrolls; tests can still see what asked to be shown.
if (typeof Element.prototype.scrollIntoView !== 'function') {
  Element.prototype.scrollIntoView = vi.fn();
}

// uPlot draws on <canvas>, which jsdom does not implement. Charts are covered by the pure spec
// builders in lib/charts.ts; in component tests uPlot is a stub that records what it was given.
vi.mock('uplot', () => {
  class FakeUPlot {
    static instances: FakeUPlot[] = [];
    static paths = { bars: () => () => null };
    width: number;
    height: number;
    constructor(
      public opts: { width: number; height: number },
      public data: unknown,
      public target: HTMLElement,
    ) {
      this.width = opts.width;
      this.height = opts.height;
      FakeUPlot.instances.push(this);
    }
    setSize(size: { width: number; height: number }) {
      this.width = size.width;
      this.height = size.height;
    }
    setData(data: unknown) {
      this.data = data;
      this.dataUpdates += 1;
    }
    dataUpdates = 0;
    destroyed = false;
    destroy() {
      this.destroyed = true;
    }
  }
  return { default: FakeUPlot };
});

if (typeof window.matchMedia !== 'function') {
  Object.defineProperty(window, 'matchMedia', {
    writable: true,
    value: (query: string) => ({
      matches: false,
      media: query,
      onchange: null,
      addEventListener: () => {},
      removeEventListener: () => {},
      addListener: () => {},
      removeListener: () => {},
      dispatchEvent: () => false,
    }),
  });
}

afterEach(() => {
  localStorage.clear();
});
