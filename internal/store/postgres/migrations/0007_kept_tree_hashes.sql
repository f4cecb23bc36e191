-- Tree hashes are kept from level 4 up (seal.MinStoredLevel); the lower
-- ones are made from the leaves when read. Nothing to change in the schema:
-- this version marks that the logs here may lack low hashes, so that an
-- older auditops, which reads every level from tree_hashes and would fail
-- to seal, prove or pin, refuses to start against this store instead.
-- Hashes stored before stay; nothing reads those below level 4.
SELECT 1;
