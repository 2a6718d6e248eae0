-- Why a delivery's last attempt failed, machine-readable (typed delivery errors): one of the
-- names of `secureform_contract::FailureReason` (`connection`, `timeout`, `tls`, `auth`,
-- `quota`, `rejected_by_peer`, `peer_error`, `bad_config`, `payload`, `internal`, `erased`,
-- `other`), beside the text in `last_error`; NULL once delivered. Rows failed before this
-- migration keep NULL: the service then derives the reason from `last_error` (`erased`, a sink
-- no longer configured, else `other`).
ALTER TABLE deliveries ADD COLUMN failure_reason TEXT;
