-- Amendment decisions look stored filings up by issuer and by filing or original-submission date,
-- for a whole ingest group at once. With only the issuer indexed, each lookup read every filing of
-- the issuer. The first index also serves lookups by issuer alone, so the old one goes.
CREATE INDEX filings_issuer_filed ON filings (issuer_cik, filed_at);
CREATE INDEX filings_issuer_original ON filings (issuer_cik, date_of_original_submission);
DROP INDEX filings_issuer;
