-- What a running step reports about itself: a note for people (shown live
-- on the task page) and data for the domain (e.g. which pods a drain still
-- waits for and when it started), kept across the step's attempts.
ALTER TABLE task_steps
    ADD COLUMN progress      text,
    ADD COLUMN progress_data jsonb;
