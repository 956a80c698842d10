-- The day read (reads.rs) finds a sleep or recovery whose cycle is not stored yet by the sleep's
-- own day; without this index that part of every dashboard read scanned all sleeps.
CREATE INDEX sleep_day ON sleep(day);
