/*
 * stunkit/core.h - the codec, integrity, the answers and the state machines
 * (transactions, NAT behaviour discovery, the TURN client, PCP/NAT-PMP,
 * ICE, the rendezvous): no sockets, no clock, no DNS, no randomness of
 * their own. Link libstunkit-core (pkg-config stunkit-core) for
 * these alone; stunkit/stunkit.h adds the blocking drivers and DNS.
 */
#ifndef STUNKIT_CORE_H
#define STUNKIT_CORE_H

#include "stunkit/export.h"
#include "stunkit/error.h"
#include "stunkit/addr.h"
#include "stunkit/machine.h"
#include "stunkit/msg.h"
#include "stunkit/integrity.h"
#include "stunkit/txn.h"
#include "stunkit/nat.h"
#include "stunkit/responder.h"
#include "stunkit/turn.h"
#include "stunkit/portmap.h"
#include "stunkit/ice.h"
#include "stunkit/rendezvous.h"
#include "stunkit/secret.h"

#endif
