/**
 * HTML that escapes by default: `html\`<b>${name}</b>\`` escapes `name` unless it is already Html
 * (another template, or `trusted()`). Arrays of Html join; null, undefined and false render
 * nothing. The console builds every page and fragment with it, so a volume name, a path in a set
 * or an error message can never become markup.
 */
export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

export type HtmlValue = Html | string | number | boolean | null | undefined | HtmlValue[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function render(v: HtmlValue): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false || v === true) return '';
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Markup the console wrote itself (never user data). */
export function trusted(text: string): Html {
  return new Html(text);
}

/** A JSON value for an attribute (`hx-vals`, `data-*`): the template escapes the quotes. */
export function jsonAttr(v: unknown): string {
  return JSON.stringify(v);
}
