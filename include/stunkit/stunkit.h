/* stunkit/stunkit.h - everything public in one include. */
#ifndef STUNKIT_H
#define STUNKIT_H

#include "stunkit/core.h"
#include "stunkit/client.h"
#include "stunkit/link.h"
#include "stunkit/upnp.h"
#include "stunkit/mapping.h"
#include "stunkit/peer.h"

#endif
