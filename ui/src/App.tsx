// The shell: the session (who, may they write), the header, and the page the URL names.
import { useEffect } from 'preact/hooks';
import { ErrorBox, Loading, NotFound } from './components/common';
import { ApiError, api } from './lib/api';
import { useFetch } from './lib/hooks';
import { onLinkClick, useLocation, type Loc } from './lib/router';
import { ComparePage } from './pages/ComparePage';
import { RunPage } from './pages/RunPage';
import { RunsPage } from './pages/RunsPage';
import type { Session } from './lib/types';

function Header({ session }: { session: Session | undefined }) {
  return (
    <header class="top">
      <a href="/" class="brand" aria-label="autolog: all runs">
        autolog
      </a>
      <nav aria-label="Main">
        <a href="/">Runs</a>
      </nav>
      <span class="spacer" />
      {session && (
        <span class="who muted">
          {session.mode === 'local' ? 'local store' : session.user}
          {!session.can_write && ' · read-only'} · v{session.version}
        </span>
      )}
      {session?.mode === 'server' && (
        <form method="post" action="/logout" class="logout">
          <button type="submit" class="link-button">
            Sign out
          </button>
        </form>
      )}
    </header>
  );
}

function LoginNeeded() {
  const next = new URLSearchParams(location.search).get('next') ?? '/';
  return (
    <div class="empty login">
      <h1>Sign in</h1>
      <p>These pages need a token.</p>
      <ul>
        <li>
          Started with <code>autolog ui</code>? Open the link it printed in its terminal (it carries the token:{' '}
          <code>http://127.0.0.1:5050/?token=…</code>).
        </li>
        <li>
          On <code>autolog server</code>: <a href={'/login?next=' + encodeURIComponent(next)}>sign in with a read token</a>{' '}
          (made with <code>autolog server token create NAME --scope read</code>).
        </li>
      </ul>
    </div>
  );
}

function route(loc: Loc) {
  const path = loc.path;
  if (path === '/' || path === '') return <RunsPage loc={loc} project={null} />;
  let m = /^\/p\/([^/]+)\/?$/.exec(path);
  if (m) return <RunsPage loc={loc} project={decodeURIComponent(m[1])} />;
  m = /^\/r\/([^/]+)\/?$/.exec(path);
  if (m) return <RunPage loc={loc} runId={decodeURIComponent(m[1])} key={m[1]} />;
  if (path === '/compare') return <ComparePage loc={loc} />;
  return <NotFound what={`There is no page at ${path}.`} />;
}

export function App() {
  const loc = useLocation();
  const session = useFetch(() => api.session(), []);
  useEffect(() => {
    document.addEventListener('click', onLinkClick);
    return () => document.removeEventListener('click', onLinkClick);
  }, []);

  let body;
  if (loc.path === '/login' || (session.error instanceof ApiError && session.error.status === 401)) body = <LoginNeeded />;
  else if (session.error) body = <ErrorBox what="reach the autolog server" error={session.error} retry={session.reload} />;
  else if (!session.data) body = <Loading what="session" />;
  else body = route(loc);
  return (
    <>
      <Header session={session.data} />
      <main id="main">{body}</main>
    </>
  );
}
