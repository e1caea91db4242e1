// api.js: JSON calls to the host's /api. Same-origin requests carry the
// session cookie that the login link set.

let unauthorized = () => {};

// onUnauthorized sets what happens when the host answers 401.
export function onUnauthorized(fn) {
  unauthorized = fn;
}

// api sends a request and resolves with {status, ok, data}; it rejects
// only when the host cannot be reached.
export async function api(path, { method = 'GET', body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (resp.status === 401) unauthorized();
  return { status: resp.status, ok: resp.ok, data };
}

// errorText is the host's message for a failed call.
export function errorText(res) {
  return (res.data && res.data.error && res.data.error.message) || `the host answered ${res.status}`;
}
