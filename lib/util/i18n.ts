// The labs and the trace speak English or Chinese: every message is written in both, side by side.
export type Lang = 'en' | 'zh';

/** Picks the message in `lang`. */
export function t(lang: Lang, m: { en: string; zh: string }): string {
  return m[lang];
}

/** `say(en, zh)`: prints the message in `lang` through `out`. */
export function sayer(out: (line: string) => void, lang: Lang): (en: string, zh: string) => void {
  return (en, zh) => out(lang === 'en' ? en : zh);
}
