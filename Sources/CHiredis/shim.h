#ifndef STAMPEDE_CHIREDIS_SHIM_H
#define STAMPEDE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
