"""Call transcription: recordings per speaker, post-call and live recognition with Vosk, search
and keyword alerts. Runs as its own daemon (`hotline transcriber`) so recognition never touches
the controller's event loop; the controller only records which calls need transcribing."""
