#!/usr/bin/env node
import { runProgram } from '../../lib/main.js'
import { program } from './filter.js'

await runProgram(program)
