-- Issue #17, finding 8: attempts stored before the errors became generic
-- held Go's error text (resolved addresses, ports, the DNS server, the
-- address ranges of the guard). Rewrite them to the categories the worker
-- stores now (webhooks.attemptError); keep what never named an address.
UPDATE webhook_attempts SET error = CASE
    WHEN error LIKE 'refused: %' THEN 'refused: private address'
    WHEN error LIKE 'bad request: %' THEN 'webhook_url is not a valid URL'
    WHEN error LIKE '%no such host%' THEN 'dns: host not found'
    WHEN error LIKE '%lookup %' THEN 'dns: lookup failed'
    WHEN error LIKE '%connection refused%' THEN 'connection refused'
    WHEN error LIKE '%connection reset%' OR error LIKE '%EOF%' THEN 'connection closed by the endpoint'
    WHEN error LIKE '%certificate%' THEN 'tls: certificate not trusted'
    WHEN error LIKE '%HTTPS client%' OR error LIKE '%tls: %' THEN 'tls: handshake failed'
    WHEN error LIKE '%timeout%' OR error LIKE '%deadline exceeded%' THEN 'timeout: no response'
    WHEN error LIKE '%unreachable%' THEN 'network unreachable'
    ELSE 'connection failed'
END
WHERE error <> ''
  AND error NOT LIKE 'timeout: no response within %'
  AND error NOT LIKE 'redirect not followed: %'
  AND error NOT LIKE 'HTTP %'
  AND error NOT LIKE 'webhook_url %';
