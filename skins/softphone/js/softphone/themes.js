/*
 * themes.js: colour themes of the softphone skin, chosen with the `colortheme` parameter
 * (or in Settings). `theme_0` is the built-in default and is not meant to be edited here; add or
 * change the other entries. `number` is the `colortheme` value that selects the theme.
 *
 * Every colour pair that carries text (text on bg/surface/button, button texts) must keep a
 * contrast ratio of at least 4.5:1 (WCAG AA); tests/e2e-skins checks this table.
 *
 * Keys: bg (page), surface (cards, lists), button (ordinary buttons), buttonhover, text,
 * muted (secondary text), accent (links, highlighted text on bg/surface), tabselected (selected
 * tab marker), primary/primarytext, call/calltext, hangup/hanguptext, border, focus (outline),
 * danger (error text on surface), fontfamily.
 */
var themelist = [
  {
    id: 'theme_0', number: 1, name: 'Default', dark: true,
    colors: {
      bg: '#1d1d1d', surface: '#262626', button: '#333333', buttonhover: '#3d3d3d',
      text: '#ffffff', muted: '#c8c8c8', accent: '#31b6e7', tabselected: '#22aadd',
      primary: '#0e6f96', primarytext: '#ffffff', call: '#1e7b34', calltext: '#ffffff',
      hangup: '#c0282d', hanguptext: '#ffffff', border: '#707070', focus: '#ffd23f',
      danger: '#ff8a80', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_1', number: 2, name: 'Light Blue', dark: false,
    colors: {
      bg: '#f2f6fb', surface: '#ffffff', button: '#e1ebf6', buttonhover: '#cfdff0',
      text: '#10243a', muted: '#44576b', accent: '#0b5cad', tabselected: '#0b5cad',
      primary: '#0b5cad', primarytext: '#ffffff', call: '#1b7a35', calltext: '#ffffff',
      hangup: '#b71c1c', hanguptext: '#ffffff', border: '#7e8da0', focus: '#7a3e00',
      danger: '#a31515', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_2', number: 3, name: 'Light Green', dark: false,
    colors: {
      bg: '#f2f8f3', surface: '#ffffff', button: '#dfeee2', buttonhover: '#cbe4d0',
      text: '#132e19', muted: '#3d5843', accent: '#1d6a32', tabselected: '#1d6a32',
      primary: '#1d6a32', primarytext: '#ffffff', call: '#1b7a35', calltext: '#ffffff',
      hangup: '#b71c1c', hanguptext: '#ffffff', border: '#7f9283', focus: '#6a1b9a',
      danger: '#a31515', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_3', number: 4, name: 'Light Orange', dark: false,
    colors: {
      bg: '#fff7ef', surface: '#ffffff', button: '#fbe4cc', buttonhover: '#f6d3b0',
      text: '#3a2210', muted: '#65472d', accent: '#9c4500', tabselected: '#9c4500',
      primary: '#9c4500', primarytext: '#ffffff', call: '#1b7a35', calltext: '#ffffff',
      hangup: '#b71c1c', hanguptext: '#ffffff', border: '#a58972', focus: '#0b5cad',
      danger: '#a31515', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_6', number: 5, name: 'Light Purple', dark: false,
    colors: {
      bg: '#f7f3fb', surface: '#ffffff', button: '#ece4f6', buttonhover: '#ded1ef',
      text: '#24123a', muted: '#55466a', accent: '#6a2c9e', tabselected: '#6a2c9e',
      primary: '#6a2c9e', primarytext: '#ffffff', call: '#1b7a35', calltext: '#ffffff',
      hangup: '#b71c1c', hanguptext: '#ffffff', border: '#9485a9', focus: '#7a3e00',
      danger: '#a31515', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_4', number: 6, name: 'Dark Red', dark: true,
    colors: {
      bg: '#1f1416', surface: '#2a1b1e', button: '#3b2529', buttonhover: '#4a2e33',
      text: '#ffffff', muted: '#e3cdd1', accent: '#ff9e94', tabselected: '#ff6f61',
      primary: '#a8231b', primarytext: '#ffffff', call: '#22703a', calltext: '#ffffff',
      hangup: '#c62828', hanguptext: '#ffffff', border: '#816369', focus: '#ffd23f',
      danger: '#ffab91', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_7', number: 7, name: 'Yellow', dark: false,
    colors: {
      bg: '#fffbe8', surface: '#ffffff', button: '#fff0b0', buttonhover: '#ffe58a',
      text: '#2b2400', muted: '#574d12', accent: '#725300', tabselected: '#806000',
      primary: '#725300', primarytext: '#ffffff', call: '#1b7a35', calltext: '#ffffff',
      hangup: '#b71c1c', hanguptext: '#ffffff', border: '#a0913c', focus: '#0b5cad',
      danger: '#a31515', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_5', number: 8, name: 'Blue', dark: true,
    colors: {
      bg: '#0d1b2a', surface: '#13263a', button: '#1c3550', buttonhover: '#24446a',
      text: '#ffffff', muted: '#c5d5e6', accent: '#7cc4ff', tabselected: '#4aa8ff',
      primary: '#1560b8', primarytext: '#ffffff', call: '#1e7b34', calltext: '#ffffff',
      hangup: '#c0282d', hanguptext: '#ffffff', border: '#58738f', focus: '#ffd23f',
      danger: '#ffab91', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_8', number: 9, name: 'Purple', dark: true,
    colors: {
      bg: '#1e1426', surface: '#2a1d36', button: '#3a2a4a', buttonhover: '#46345a',
      text: '#ffffff', muted: '#d6c8e4', accent: '#d6b0ff', tabselected: '#b47cf0',
      primary: '#7b3fb5', primarytext: '#ffffff', call: '#1e7b34', calltext: '#ffffff',
      hangup: '#c0282d', hanguptext: '#ffffff', border: '#79668e', focus: '#ffd23f',
      danger: '#ffab91', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_9', number: 10, name: 'Turquoise', dark: false,
    colors: {
      bg: '#eefafa', surface: '#ffffff', button: '#d5f1f1', buttonhover: '#bde8e8',
      text: '#0b2e2e', muted: '#2f5757', accent: '#00676a', tabselected: '#00797b',
      primary: '#00676a', primarytext: '#ffffff', call: '#1b7a35', calltext: '#ffffff',
      hangup: '#b71c1c', hanguptext: '#ffffff', border: '#709494', focus: '#7a3e00',
      danger: '#a31515', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_10', number: 11, name: 'Light Skin', dark: false,
    colors: {
      bg: '#faf6f2', surface: '#ffffff', button: '#f1e7dd', buttonhover: '#e7d8c8',
      text: '#2e2118', muted: '#5e4d40', accent: '#874812', tabselected: '#874812',
      primary: '#874812', primarytext: '#ffffff', call: '#1b7a35', calltext: '#ffffff',
      hangup: '#b71c1c', hanguptext: '#ffffff', border: '#9d8977', focus: '#0b5cad',
      danger: '#a31515', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  },
  {
    id: 'theme_11', number: 12, name: 'Green Orange', dark: true,
    colors: {
      bg: '#13241a', surface: '#1b3024', button: '#26402f', buttonhover: '#2f4d39',
      text: '#ffffff', muted: '#cfe0d4', accent: '#ffb366', tabselected: '#ff9933',
      primary: '#a14f00', primarytext: '#ffffff', call: '#1e7b34', calltext: '#ffffff',
      hangup: '#c0282d', hanguptext: '#ffffff', border: '#567f64', focus: '#ffd23f',
      danger: '#ffab91', fontfamily: 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif'
    }
  }
];
