// A small router: the URL (path + query) is the whole view state, so any view can be
// bookmarked, shared and restored with Back/Forward.
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set<() => void>();

function notify(): void {
  listeners.forEach((listener) => listener());
}

window.addEventListener('popstate', notify);

export function navigate(url: string, replace = false): void {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  notify();
  if (!replace) window.scrollTo(0, 0);
}

export interface Loc {
  path: string;
  params: URLSearchParams;
}

function read(): Loc {
  return { path: location.pathname, params: new URLSearchParams(location.search) };
}

export function useLocation(): Loc {
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const update = () => setLoc(read());
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return loc;
}

/** The URL with `patch` applied to its query (null/'' removes a key). */
export function withParams(patch: Record<string, string | null | undefined>, path = location.pathname): string {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null || value === undefined || value === '') params.delete(key);
    else params.set(key, value);
  }
  // commas, slashes and colons stay readable in a shared link (all legal in a query)
  const text = params.toString().replace(/%2C/gi, ',').replace(/%2F/gi, '/').replace(/%3A/gi, ':');
  return path + (text ? '?' + text : '');
}

export function setParams(patch: Record<string, string | null | undefined>, replace = true): void {
  navigate(withParams(patch), replace);
}

/** Plain left clicks on same-origin links go through the router; others (new tab) do not. */
export function onLinkClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)
    return;
  const anchor = (event.target as Element).closest('a');
  if (!anchor || anchor.target || anchor.hasAttribute('download') || anchor.origin !== location.origin) return;
  if (anchor.pathname.startsWith('/api/') || anchor.pathname === '/login' || anchor.pathname === '/logout') return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search);
}
