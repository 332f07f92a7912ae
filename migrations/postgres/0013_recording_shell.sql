-- The shell a recorded terminal ran, so a recording is named for people ("bash on web-1").
ALTER TABLE recordings ADD COLUMN shell TEXT;
