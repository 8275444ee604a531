// Signs an inbound webhook as its provider would, with the provider's own library: the dispatcher's verification
// is checked against these, not against itself.
//
// Usage: node sign.js <stripe|github> <secret> <payload> [unix timestamp]; prints the headers as one JSON line.
import Stripe from 'stripe';
import { sign } from '@octokit/webhooks-methods';

const [provider, secret, payload, timestamp] = process.argv.slice(2);
if (provider === 'stripe') {
  const stripe = new Stripe('sk_test_unused');
  const header = stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    timestamp: timestamp ? Number(timestamp) : undefined,
  });
  console.log(JSON.stringify({ 'stripe-signature': header }));
} else if (provider === 'github') {
  console.log(JSON.stringify({ 'x-hub-signature-256': await sign(secret, payload) }));
} else {
  console.error(`unknown provider ${provider}`);
  process.exit(2);
}
