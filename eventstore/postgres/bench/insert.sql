-- One event per transaction, as a naive adapter without group commit would
-- write it: a fresh stream, version 0, the bench payload of storetest.Bench.
INSERT INTO pgbench_eventstore.events (event_id, stream, version, type, data)
VALUES (gen_random_uuid()::text, 'bench-' || gen_random_uuid()::text, 0, 'InvoiceCreated',
        convert_to('{"invoice_id":"inv_0123456789","asset":"USDT.ETH","amount":"49.99","fee":"0.124975"}', 'UTF8'));
