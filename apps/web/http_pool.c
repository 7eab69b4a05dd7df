/* The handler threads: every POST (a plan, an upload, a launch) runs here while its connection
 * is suspended, so the polling threads keep answering GETs and event streams whatever a POST
 * costs. A bounded queue: more than PS_HTTP_QUEUE_MAX waiting get 503 at once. */
#include "web/http_internal.h"

static void *handler_main(void *arg) {
  web_http *h = arg;
  pthread_mutex_lock(&h->lock);
  for (;;) {
    while (!h->head && !h->stopping)
      pthread_cond_wait(&h->work, &h->lock);
    http_conn *hc = h->head;
    if (!hc) break; /* stopping, and nothing left to answer */
    h->head = hc->next;
    if (!h->head) h->tail = NULL;
    h->queued--;
    pthread_mutex_unlock(&h->lock);
    ps_web_route(h->w, &hc->req, &hc->resp);
    pthread_mutex_lock(&h->lock);
    hc->phase = CONN_DONE;
    MHD_resume_connection(hc->c); /* the access handler runs again and sends hc->resp */
  }
  pthread_mutex_unlock(&h->lock);
  return NULL;
}

bool ps__http_pool_start(web_http *h) {
  for (int i = 0; i < PS_HTTP_HANDLERS; i++) {
    if (pthread_create(&h->handlers[i], NULL, handler_main, h) != 0) return false;
    h->handler_count++;
  }
  return true;
}

bool ps__http_pool_submit(web_http *h, http_conn *hc) {
  pthread_mutex_lock(&h->lock);
  bool ok = !h->stopping && h->queued < PS_HTTP_QUEUE_MAX;
  if (ok) {
    hc->phase = CONN_QUEUED;
    hc->next = NULL;
    if (h->tail)
      h->tail->next = hc;
    else
      h->head = hc;
    h->tail = hc;
    h->queued++;
    /* Suspended before a handler can take it (the lock): resumed only once answered. */
    MHD_suspend_connection(hc->c);
    pthread_cond_signal(&h->work);
  }
  pthread_mutex_unlock(&h->lock);
  return ok;
}

void ps__http_pool_stop(web_http *h) {
  pthread_mutex_lock(&h->lock);
  h->stopping = true;
  pthread_cond_broadcast(&h->work);
  pthread_mutex_unlock(&h->lock);
  for (int i = 0; i < h->handler_count; i++)
    pthread_join(h->handlers[i], NULL);
  h->handler_count = 0;
}
