import { mount } from 'svelte';
import 'uplot/dist/uPlot.min.css';
import './app.css';
import App from './App.svelte';
import { chartTheme } from './lib/theme.svelte';

// The theme was first read before app.css was applied; read the CSS variables again.
chartTheme.refresh();

const target = document.getElementById('app');
if (!target) throw new Error('#app is missing from index.html');

export default mount(App, { target });
