// An OIDC provider for the tests: oauth2-mock-server (real keys, real JWKS, discovery, authorization code
// with PKCE), plus two test routes:
//   POST /test/user   JSON claims added to every token it issues next (the "signed-in user")
//   POST /test/token  {claims, expiresIn, kid} -> a token signed by this provider with those claims
//   POST /test/rotate -> a new signing key, published in the JWKS and used for tokens from now on
// Usage: node provider.mjs PORT  (prints "ready <issuer>" when listening)
import { OAuth2Server, Events } from 'oauth2-mock-server';

const port = Number(process.argv[2]);
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
let userClaims = {};
let currentKid;

function sendJson(res, body, status = 200) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

server.service.on(Events.BeforeTokenSigning, (token) => {
  Object.assign(token.payload, userClaims);
});
server.service.addRoute('POST', '/test/user', (req, res) => {
  userClaims = req.body ?? {};
  sendJson(res, { ok: true });
});
server.service.addRoute('POST', '/test/token', async (req, res) => {
  const { claims = {}, expiresIn = 3600, kid } = req.body ?? {};
  const token = await server.issuer.buildToken({
    kid: kid ?? currentKid,
    expiresIn,
    scopesOrTransform: (_header, payload) => Object.assign(payload, claims),
  });
  sendJson(res, { token });
});

server.service.addRoute('POST', '/test/rotate', async (req, res) => {
  const key = await server.issuer.keys.generate('RS256');
  currentKid = key.kid;
  sendJson(res, { kid: key.kid });
});

await server.start(port, '127.0.0.1');
console.log(`ready ${server.issuer.url}`);
const stop = async () => { await server.stop(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
