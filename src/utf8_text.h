/*-------------------------------------------------------------------------
 *
 * utf8_text.h
 *		Names and texts of the database as what dolon serves outside it
 *		needs them: in UTF-8, whatever the database's encoding.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_UTF8_TEXT_H
#define DOLON_UTF8_TEXT_H

extern const char *dolon_utf8_text(const char *text);
extern const char *dolon_valid_utf8(const char *text);

#endif							/* DOLON_UTF8_TEXT_H */
