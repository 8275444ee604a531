// An OpenID provider for the dispatcher's OAuth 2.0 tests: oidc-provider with a client credentials client, the
// scope `deliveries`, and token introspection (RFC 7662) for the test's resource server. Prints one JSON line when it listens ({"issuer"}) and one per access token it issues, so that
// tests can count them and tell a token it issued from any other.
//
//   node provider.js [PORT]        TOKEN_TTL=<seconds> sets how long its tokens live (default 60);
//                                  ONLY_POST=1 makes its token endpoint refuse credentials in Authorization
//                                  (oidc-provider takes either way for a client with a secret), as some do.
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 0);
const ttl = Number(process.env.TOKEN_TTL ?? 60);
const onlyPost = process.env.ONLY_POST === '1';
const client = (id, secret, method) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: method,
});

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      client('dispatcher', 'dispatcher-s3cret', onlyPost ? 'client_secret_post' : 'client_secret_basic'),
    ],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      // Resource servers ask whether a token is active (RFC 7662).
      introspection: { enabled: true },
    },
    scopes: ['deliveries'],
    ttl: { ClientCredentials: ttl },
  });
  provider.on('client_credentials.saved', (token) => {
    console.log(JSON.stringify({ token: token.jti, client: token.clientId, scope: token.scope ?? null }));
  });
  provider.on('grant.error', (ctx, error) => {
    console.log(JSON.stringify({ refused: ctx.oidc?.client?.clientId ?? null, error: error.error }));
  });
  provider.use(async (ctx, next) => {
    if (onlyPost && ctx.path === '/token' && ctx.headers.authorization) {
      console.log(JSON.stringify({ refused: 'client_secret_basic' }));
      ctx.status = 401;
      ctx.body = { error: 'invalid_client', error_description: 'client authentication must use client_secret_post' };
      return;
    }
    await next();
  });
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
