/* peerscope: which GPUs can really talk peer-to-peer, over which links.
 *
 * The public API of libpeerscope, one topic header each; the rules that hold for all of
 * them (errors, ownership, option structs, environment) are at the top of core.h. */
#ifndef PEERSCOPE_H
#define PEERSCOPE_H

#include "core.h"
#include "report.h"
#include "bench.h"
#include "model.h"
#include "plan.h"
#include "doctor.h"
#include "capture.h"
#include "launch.h"

#endif
