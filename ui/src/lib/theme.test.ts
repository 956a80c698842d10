/// <reference types="node" />
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chartTheme } from './theme.svelte';

// The stylesheet as written (vitest hands CSS imports over empty).
const css = readFileSync(`${import.meta.dirname}/../app.css`, 'utf8');

describe('chart theme', () => {
  it("writes in the page's font even before the stylesheet applies", () => {
    // jsdom applies no stylesheet here: the theme holds its fallback.
    const page = /--font:([^;]+);/.exec(css)?.[1] ?? '';
    const words = (s: string) => s.replace(/\s+/g, ' ').trim();
    expect(words(page)).not.toBe('');
    expect(words(chartTheme.value.font)).toBe(words(page));
  });

  it('reads the stylesheet again once the page has loaded', () => {
    const root = document.documentElement.style;
    root.setProperty('--text', '#010203');
    root.setProperty('--font', 'Test Sans');
    try {
      expect(chartTheme.value.text).not.toBe('#010203');
      window.dispatchEvent(new Event('load'));
      expect(chartTheme.value.text).toBe('#010203');
      expect(chartTheme.value.font).toBe('Test Sans');
    } finally {
      root.removeProperty('--text');
      root.removeProperty('--font');
      window.dispatchEvent(new Event('load'));
    }
  });
});
