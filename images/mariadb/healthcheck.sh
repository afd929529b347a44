#!/bin/bash
# Ready means: initialisation finished and the server answers.
[ -e /run/mysqld/hpcstack-ready ] && mariadb-admin --protocol=socket ping >/dev/null 2>&1
