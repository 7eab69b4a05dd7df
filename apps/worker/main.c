/* peerscope-worker entry point (placeholder while the worker is written). */
int main(void) { return 0; }
