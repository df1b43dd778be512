// The verification snippet published in the product text (the seed),
// unchanged, followed by a small driver for webhooks' node_test.go:
//   node verify.mjs <raw-body-file> <signature-header> <secret>
// exits 0 when verify accepts, 1 when it rejects.
import crypto from "node:crypto"; function verify(rawBody, signature, secret) { const expected = "sha256=" + crypto.createHmac("sha256", secret).update(rawBody).digest("hex"); const a = Buffer.from(expected), b = Buffer.from(signature || ""); return a.length === b.length && crypto.timingSafeEqual(a, b); }

import { readFileSync } from "node:fs";
const [bodyFile, signature, secret] = process.argv.slice(2);
const rawBody = readFileSync(bodyFile); // the raw bytes, as a receiver should use
if (verify(rawBody, signature, secret)) {
  console.log("accepted");
  process.exit(0);
}
console.log("rejected");
process.exit(1);
