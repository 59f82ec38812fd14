/** A Redis URL with its password masked, safe to log. */
export function redactUrl(url: string | undefined): string {
  if (!url) return '(none)';
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable URL)'; // never echo a string that may hold a password somewhere unexpected
  }
}
