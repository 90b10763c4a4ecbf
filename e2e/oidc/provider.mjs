// A real OpenID provider for the single sign-on tests: the `oidc-provider` package (a certified
// OpenID Connect implementation) in this process, on 127.0.0.1 and a free port, with an
// `http://` issuer, configured by the test: its clients, its accounts (with passwords, a
// one-time code, groups, an `acr`), the authorization code flow with PKCE required and the
// device authorization grant (RFC 8628) on.
//
// The provider's own development pages are off; its login, confirm and error pages are the
// minimal accessible ones below (labelled fields `Username`, `Password`, `One-time code`; buttons
// `Sign in`, `Cancel`, `Continue`), so the tests' axe-core checks hold on them too.
//
// Test controls (see `startProvider`): rotate the signing key, rewrite the ID token in the token
// endpoint's answers (forged, expired, for another audience, with another nonce or issuer),
// disable an account, stop the provider and start it again on the same port.

import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

/** The ID-token rewrites `setMode` accepts. */
export const MODES = ['normal', 'forged', 'expired', 'wrong_audience', 'wrong_nonce', 'wrong_issuer'];

/** The grant type of the device flow. */
export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** A new RS256 signing key as a private JWK with a fresh `kid`. */
async function newSigningKey(alg = 'RS256') {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: `k-${randomUUID()}`, alg, use: 'sig' };
}

/** Escapes text for HTML. */
function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A whole page: language, title, one main landmark with one h1 (what axe-core asks for). */
function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} – Test identity provider</title>
</head>
<body>
<header><p>Test identity provider</p></header>
<main>
<h1>${esc(title)}</h1>
${body}
</main>
</body>
</html>`;
}

/** Reads a form-encoded request body (bounded). */
function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 64 << 10) {
        reject(new Error('form too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

/**
 * Starts a provider. `clients`: oidc-provider client metadata (`client_id`, `client_secret`,
 * `redirect_uris`, `grant_types`…). `accounts`: `[{ id, password, email, email_verified, name,
 * groups, otp, acr, claims }]` — `id` is both the subject and the username typed at sign-in;
 * `otp` (optional) is the one-time code that makes the sign-in multi-factor (`amr`
 * `["pwd","otp","mfa"]` instead of `["pwd"]`); `claims` adds or overrides ID-token claims.
 *
 * Returns the controls:
 * - `issuer`: `http://127.0.0.1:PORT`;
 * - `rotateKeys({ keepOld = true })`: a new signing key first in the JWKS (the old one after it
 *   unless `keepOld` is false); every token from now on is signed with it;
 * - `setMode(mode)`: how the token endpoint's `id_token` is rewritten from now on (`MODES`);
 * - `disable(id)` / `enable(id)`: a disabled account's sign-in ends with `access_denied`, and
 *   it gets no tokens for earlier grants;
 * - `addAccount(account)`;
 * - `stop()`: closes the port and every open connection (the provider cannot be reached);
 *   `restart()`: listens on the same port again; `close()`: stops for good;
 *   `stopAfterNextCode()`: stops once the browser is sent back to the client with a code, so
 *   that the client's token request finds the provider gone;
 * - `logins`: every finished sign-in `{ account, amr }`, `tokenResponses`: every id_token
 *   sent, and `requests`: every request `{ method, path, at }`, for assertions.
 */
export async function startProvider({ clients, accounts = [], port = 0 } = {}) {
  const accountsById = new Map(accounts.map((a) => [a.id, { ...a }]));
  const disabled = new Set();
  const keys = [await newSigningKey()];
  const rogueKey = await newSigningKey();
  const cookieKeys = [randomBytes(32).toString('hex')];
  let mode = 'normal';
  let stopAfterCode = false;
  const logins = [];
  const tokenResponses = [];
  const requests = [];

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) send(res, 500, page('Something went wrong', `<p>${esc(e.message)}</p>`));
      else res.destroy();
    });
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => server.listen(port, '127.0.0.1', resolve).once('error', reject));
  const boundPort = server.address().port;
  const issuer = `http://127.0.0.1:${boundPort}`;

  function findAccount(_ctx, sub) {
    const account = accountsById.get(sub);
    if (!account || disabled.has(sub)) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: account.email,
          email_verified: account.email_verified ?? true,
          name: account.name ?? sub,
          preferred_username: account.preferred_username ?? sub,
          groups: account.groups ?? [],
          ...account.claims,
        };
      },
    };
  }

  function build() {
    const provider = new Provider(issuer, {
      clients,
      jwks: { keys },
      cookies: { keys: cookieKeys },
      findAccount,
      scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
      claims: {
        openid: ['sub', 'groups', 'amr', 'acr', 'auth_time', 'sid'],
        email: ['email', 'email_verified'],
        profile: ['name', 'preferred_username'],
        groups: ['groups'],
      },
      // Every claim of the granted scopes goes into the ID token (not only into userinfo).
      conformIdTokenClaims: false,
      acrValues: ['urn:test:pwd', 'urn:test:mfa'],
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        deviceFlow: {
          enabled: true,
          userCodeInputSource,
          userCodeConfirmSource,
          successSource,
        },
        revocation: { enabled: true },
      },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      // Consent is given by signing in (the gateway is a first-party client): a grant of every
      // scope this provider knows, made on the first sign-in.
      async loadExistingGrant(ctx) {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (grantId) {
          const grant = await ctx.oidc.provider.Grant.find(grantId);
          if (grant) return grant;
        }
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope('openid offline_access email profile groups');
        await grant.save();
        return grant;
      },
      renderError(ctx, out) {
        ctx.type = 'html';
        const rows = Object.entries(out)
          .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
          .join('');
        ctx.body = page('Sign-in error', `<dl id="provider-error">${rows}</dl>`);
      },
      ttl: { DeviceCode: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    });
    provider.on('server_error', (_ctx, err) => console.error(`# test provider: server error: ${err.stack}`));
    return provider;
  }

  let provider = build();
  let callback = provider.callback();

  async function handle(req, res) {
    const url = new URL(req.url, issuer);
    requests.push({ method: req.method, path: url.pathname, at: Date.now() });
    if (stopAfterCode && url.pathname.startsWith('/auth')) {
      // The answer that sends the browser back to the client with a code: once it is out, the
      // provider goes away, so the client's token request cannot reach it.
      res.once('finish', () => {
        const location = res.getHeader('location') ?? '';
        if (stopAfterCode && /[?&]code=/.test(String(location))) {
          stopAfterCode = false;
          controls.stop();
        }
      });
    }
    const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort|consent))?$/);
    if (m) return interaction(req, res, m[2] ?? 'show');
    if (url.pathname === '/token' && req.method === 'POST') interceptTokenResponse(res);
    return callback(req, res);
  }

  /** Makes the token endpoint's JSON answer pass through `rewriteIdToken` before it is sent. */
  function interceptTokenResponse(res) {
    const chunks = [];
    const { write, end } = res;
    res.write = (chunk, ...rest) => {
      if (chunk) chunks.push(Buffer.from(chunk));
      const cb = rest.find((r) => typeof r === 'function');
      if (cb) cb();
      return true;
    };
    res.end = (chunk, ...rest) => {
      if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
      res.write = write;
      res.end = end;
      let body = Buffer.concat(chunks);
      rewrite(body)
        .then((rewritten) => {
          body = rewritten;
        })
        .catch((e) => console.error(`# test provider: could not rewrite a token response: ${e.message}`))
        .finally(() => {
          if (!res.headersSent) res.setHeader('Content-Length', body.length);
          end.call(res, body);
        });
      return res;
    };
  }

  async function rewrite(body) {
    let json;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return body;
    }
    if (typeof json.id_token !== 'string') return body;
    const original = json.id_token;
    json.id_token = await rewriteIdToken(original, mode);
    tokenResponses.push({ mode, original, sent: json.id_token, claims: jose.decodeJwt(original) });
    return Buffer.from(JSON.stringify(json));
  }

  /** Re-signs `idToken` as `how` says: the tampering a relying party must refuse. */
  async function rewriteIdToken(idToken, how) {
    if (how === 'normal') return idToken;
    const header = jose.decodeProtectedHeader(idToken);
    const claims = jose.decodeJwt(idToken);
    const now = Math.floor(Date.now() / 1000);
    let signWith = keys.find((k) => k.kid === header.kid) ?? keys[0];
    switch (how) {
      case 'forged':
        // The real key's kid, the rogue key's signature.
        signWith = { ...rogueKey, kid: header.kid };
        break;
      case 'expired':
        claims.iat = now - 7200;
        claims.exp = now - 3600;
        if (claims.auth_time) claims.auth_time = now - 7200;
        break;
      case 'wrong_audience':
        claims.aud = 'some-other-client';
        if (claims.azp) claims.azp = 'some-other-client';
        break;
      case 'wrong_nonce':
        claims.nonce = `forged-${randomUUID()}`;
        break;
      case 'wrong_issuer':
        claims.iss = 'http://127.0.0.1:9/not-the-issuer';
        break;
      default:
        throw new Error(`unknown mode ${how}`);
    }
    const key = await jose.importJWK(signWith, signWith.alg);
    return new jose.SignJWT(claims).setProtectedHeader({ ...header, kid: signWith.kid }).sign(key);
  }

  // --- the interaction pages ------------------------------------------------------------------

  function loginPage(uid, { error, username = '', client } = {}) {
    const summary = error
      ? `<div role="alert" id="login-error"><h2>There is a problem</h2><p>${esc(error)}</p></div>`
      : '';
    return page(
      'Sign in',
      `${summary}
<p>to continue to ${esc(client)}</p>
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<p><label for="username">Username</label><br><input id="username" name="username" type="text" value="${esc(username)}" required></p>
<p><label for="password">Password</label><br><input id="password" name="password" type="password" required></p>
<p><label for="otp">One-time code</label><br><input id="otp" name="otp" type="text" inputmode="numeric"></p>
<p><button type="submit">Sign in</button></p>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort"><p><button type="submit">Cancel</button></p></form>`,
    );
  }

  async function interaction(req, res, step) {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (e) {
      return send(res, 400, page('Sign-in error', `<p id="provider-error">${esc(e.message)}</p>`));
    }
    const { uid, prompt, params } = details;
    const client = params.client_id;
    if (step === 'abort') {
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The person cancelled the sign-in' },
        { mergeWithLastSubmission: false },
      );
    }
    if (prompt.name === 'consent') {
      // Should not happen (loadExistingGrant grants), but if it does: grant what is asked.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: client });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    if (step === 'show') return send(res, 200, loginPage(uid, { client }));
    if (step !== 'login' || req.method !== 'POST') return send(res, 405, page('Sign-in error', '<p>Use the form.</p>'));

    const form = await readForm(req);
    const username = (form.get('username') ?? '').trim();
    const account = accountsById.get(username);
    if (!account || form.get('password') !== account.password) {
      return send(res, 200, loginPage(uid, { error: 'The username or password is not right', username, client }));
    }
    if (disabled.has(account.id)) {
      logins.push({ account: account.id, refused: 'disabled' });
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'This account is disabled' },
        { mergeWithLastSubmission: false },
      );
    }
    const otp = (form.get('otp') ?? '').trim();
    if (otp && otp !== account.otp) {
      return send(res, 200, loginPage(uid, { error: 'The one-time code is not right', username, client }));
    }
    const amr = otp ? ['pwd', 'otp', 'mfa'] : ['pwd'];
    const acr = account.acr ?? (otp ? 'urn:test:mfa' : 'urn:test:pwd');
    logins.push({ account: account.id, amr, acr });
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: account.id, amr, acr, remember: false } },
      { mergeWithLastSubmission: false },
    );
  }

  // --- the device flow's pages ----------------------------------------------------------------

  async function userCodeInputSource(ctx, form, _out, err) {
    let message = '<p>Enter the code shown by the program you are signing in to.</p>';
    if (err && (err.userCode || err.name === 'NoCodeError')) {
      message = '<div role="alert" id="device-error"><p>The code you entered is not right. Try again.</p></div>';
    } else if (err && err.name === 'AbortedError') {
      message = '<div role="alert" id="device-error"><p>The sign-in was cancelled.</p></div>';
    } else if (err) {
      message = `<div role="alert" id="device-error"><p>The code could not be used: ${esc(err.message)}</p></div>`;
    }
    // oidc-provider's form, with a label for its code field and without its inline handler.
    const labelled = form
      .replace(/onfocus="[^"]*"\s*/, '')
      .replace('name="user_code"', 'id="user-code" name="user_code"')
      .replace('<input\n', '<label for="user-code">Code</label>\n  <input\n');
    ctx.body = page('Connect a device', `${message}\n${labelled}\n<p><button type="submit" form="op.deviceInputForm">Continue</button></p>`);
  }

  async function userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
    ctx.body = page(
      'Confirm the device',
      `<p><strong>${esc(client.clientName || client.clientId)}</strong> asks to sign you in.</p>
<p>Check that the program shows this code: <code id="confirm-code">${esc(userCode)}</code></p>
${form}
<p><button type="submit" form="op.deviceConfirmForm">Continue</button></p>
<p><button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Cancel</button></p>`,
    );
  }

  async function successSource(ctx) {
    ctx.body = page('Device connected', '<p id="device-done">You are signed in. Go back to the program; you can close this window.</p>');
  }

  // --- the controls ---------------------------------------------------------------------------

  const controls = {
    issuer,
    port: boundPort,
    logins,
    tokenResponses,
    requests,
    /** When the JWKS was last fetched (ms since the epoch), or 0. */
    lastJwksFetch() {
      return requests.filter((r) => r.path === '/jwks').at(-1)?.at ?? 0;
    },
    /** The public JWKS the provider serves now. */
    publicKeys() {
      return keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub);
    },
    async rotateKeys({ keepOld = true } = {}) {
      const fresh = await newSigningKey();
      if (!keepOld) keys.length = 0;
      keys.unshift(fresh);
      provider = build();
      callback = provider.callback();
      return fresh.kid;
    },
    setMode(next) {
      if (!MODES.includes(next)) throw new Error(`setMode: \`${next}\` is not one of ${MODES.join(', ')}`);
      mode = next;
    },
    disable(id) {
      if (!accountsById.has(id)) throw new Error(`disable: no account ${id}`);
      disabled.add(id);
    },
    enable(id) {
      disabled.delete(id);
    },
    addAccount(account) {
      accountsById.set(account.id, { ...account });
    },
    async stop() {
      if (!server.listening) return;
      const closed = new Promise((resolve) => server.close(resolve));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async restart() {
      if (server.listening) return;
      await new Promise((resolve, reject) => server.listen(boundPort, '127.0.0.1', resolve).once('error', reject));
    },
    /** The provider stops right after its next redirect back to a client with a code. */
    stopAfterNextCode() {
      stopAfterCode = true;
    },
    async close() {
      await controls.stop();
    },
  };
  return controls;
}

/**
 * The confidential client the gateway is registered as: `client_secret_basic` (or
 * `client_secret_post` with `authMethod`: a client has one registered method), the
 * authorization code flow and the device flow, its one redirect URI `PUBLIC_URL/sign-in/callback`.
 */
export function gatewayClient(
  publicUrl,
  { clientId = 'sealpost-gateway', clientSecret = randomBytes(24).toString('base64url'), authMethod = 'client_secret_basic' } = {},
) {
  return {
    client_id: clientId,
    client_secret: clientSecret,
    client_name: 'sealpost',
    redirect_uris: [`${publicUrl}/sign-in/callback`],
    grant_types: ['authorization_code', DEVICE_GRANT],
    response_types: ['code'],
    token_endpoint_auth_method: authMethod,
  };
}
