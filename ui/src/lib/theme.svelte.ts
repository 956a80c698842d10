/** Colors for canvas charts, read from the CSS variables so they follow light/dark mode. */
export interface ChartTheme {
  dark: boolean;
  text: string;
  muted: string;
  grid: string;
  line: string;
  surface: string;
  accent: string;
  accentSoft: string;
  green: string;
  yellow: string;
  red: string;
  deep: string;
  light: string;
  rem: string;
  awake: string;
  font: string;
}

const FALLBACK: ChartTheme = {
  dark: false,
  text: '#14171c',
  muted: '#596273',
  grid: 'rgba(20, 23, 28, 0.07)',
  line: '#8a93a3',
  surface: '#ffffff',
  accent: '#3451d1',
  accentSoft: 'rgba(52, 81, 209, 0.1)',
  green: '#17a34a',
  yellow: '#d19b00',
  red: '#dc2f35',
  deep: '#26379c',
  light: '#a9b7f4',
  rem: '#5a73ec',
  awake: '#d3d7df',
  // The page's own list (app.css), so a chart drawn before the stylesheet applies still
  // writes in the page's font.
  font: "-apple-system, BlinkMacSystemFont, 'Segoe UI', system-ui, Roboto, Ubuntu, Cantarell, 'Noto Sans', 'Helvetica Neue', Arial, sans-serif",
};

const DARK_QUERY = '(prefers-color-scheme: dark)';

function prefersDark(): boolean {
  return typeof window !== 'undefined' && typeof window.matchMedia === 'function'
    ? window.matchMedia(DARK_QUERY).matches
    : false;
}

function read(): ChartTheme {
  if (typeof document === 'undefined') return FALLBACK;
  const s = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string) => s.getPropertyValue(name).trim() || fallback;
  return {
    dark: prefersDark(),
    text: v('--text', FALLBACK.text),
    muted: v('--muted', FALLBACK.muted),
    grid: v('--chart-grid', FALLBACK.grid),
    line: v('--chart-line', FALLBACK.line),
    surface: v('--surface', FALLBACK.surface),
    accent: v('--accent', FALLBACK.accent),
    accentSoft: v('--accent-soft', FALLBACK.accentSoft),
    green: v('--recovery-green', FALLBACK.green),
    yellow: v('--recovery-yellow', FALLBACK.yellow),
    red: v('--recovery-red', FALLBACK.red),
    deep: v('--sleep-deep', FALLBACK.deep),
    light: v('--sleep-light', FALLBACK.light),
    rem: v('--sleep-rem', FALLBACK.rem),
    awake: v('--sleep-awake', FALLBACK.awake),
    font: v('--font', FALLBACK.font),
  };
}

let current = $state<ChartTheme>(read());

if (typeof window !== 'undefined') {
  // The first read comes before the stylesheet applies (this module runs while it still
  // loads, or before main.ts imports it in development), which would leave charts in the
  // fallback: read again once the page has loaded, and when light or dark mode changes.
  window.addEventListener('load', () => {
    current = read();
  });
  if (typeof window.matchMedia === 'function') {
    window.matchMedia(DARK_QUERY).addEventListener('change', () => {
      current = read();
    });
  }
}

export const chartTheme = {
  get value(): ChartTheme {
    return current;
  },
};
