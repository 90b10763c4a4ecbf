// Try single sign-on by hand: the tests' OpenID provider (./provider.mjs, the `oidc-provider`
// package) on a fixed port with one demo person, and the variables that point a gateway at it.
//
//   node e2e/oidc/demo.mjs [--port 9400] [--gateway http://127.0.0.1:8080] [--email alice@hmpps.example]
//
// The person signs in at the provider as `alice` with the password `alice` (and the one-time code
// `123456` for a multi-factor sign-in). Stop it with Ctrl-C. For trying things only: it keeps
// everything in memory and its client secret is printed.

import { parseArgs } from 'node:util';

import { gatewayClient, startProvider } from './provider.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9400' },
    gateway: { type: 'string', default: 'http://127.0.0.1:8080' },
    email: { type: 'string', default: 'alice@hmpps.example' },
  },
});
const gateway = values.gateway.replace(/\/+$/, '');
const client = gatewayClient(gateway, { clientSecret: 'demo-secret-not-for-production' });
const op = await startProvider({
  port: Number(values.port),
  clients: [client],
  accounts: [
    {
      id: 'alice',
      password: 'alice',
      otp: '123456',
      email: values.email,
      email_verified: true,
      name: 'Alice Example',
      groups: ['recipients'],
    },
  ],
});
console.log(`A test identity provider is running at ${op.issuer}. Start the gateway with:

  SEALPOST_PUBLIC_URL=${gateway} \\
  SEALPOST_OIDC_ISSUER=${op.issuer} \\
  SEALPOST_OIDC_CLIENT_ID=${client.client_id} \\
  SEALPOST_OIDC_CLIENT_SECRET=${client.client_secret} \\
  SEALPOST_OIDC_NAME="Test ID" \\
  sealpost serve --listen ${new URL(gateway).host}

Sign in as Username \`alice\`, Password \`alice\` (One-time code \`123456\` for multi-factor).
The gateway knows her once an administrator runs:
  sealpost admin user add hmpps/alice --role recipient --email ${values.email}
Ctrl-C stops the provider.`);
const stop = async () => {
  await op.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
